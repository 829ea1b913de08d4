"""`astrbot.core.star.star_handler` on convo_fsm: what the `filter.*` decorators record
about a handler. AstrBot keeps these in a process-wide registry; here each handler function
carries its own (`HANDLER_ATTR`), and `PluginHost.load` collects them from the plugin class,
so two hosts (or two tests) never see each other's plugins."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

__all__ = ["HANDLER_ATTR", "EventType", "StarHandlerMetadata", "get_handler_or_create"]

HANDLER_ATTR = "__astrbot_handler__"


class EventType(enum.Enum):
    OnAstrBotLoadedEvent = enum.auto()
    OnPlatformLoadedEvent = enum.auto()
    AdapterMessageEvent = enum.auto()
    OnWaitingLLMRequestEvent = enum.auto()
    OnLLMRequestEvent = enum.auto()
    OnLLMResponseEvent = enum.auto()
    OnAgentBeginEvent = enum.auto()
    OnAgentDoneEvent = enum.auto()
    OnDecoratingResultEvent = enum.auto()
    OnCallingFuncToolEvent = enum.auto()
    OnUsingLLMToolEvent = enum.auto()
    OnLLMToolRespondEvent = enum.auto()
    OnAfterMessageSentEvent = enum.auto()
    OnPluginErrorEvent = enum.auto()
    OnPluginLoadedEvent = enum.auto()
    OnPluginUnloadedEvent = enum.auto()


class StarHandlerMetadata:
    """One handler: its event type, its filters (all must pass), `extras_configs`
    (`priority`, higher first; AstrBot's default 0) and `desc` (the docstring)."""

    def __init__(self, event_type: EventType, handler: Callable[..., Any],
                 extras: dict[str, Any]) -> None:
        self.event_type = event_type
        self.handler = handler
        self.handler_name = handler.__name__
        self.handler_module_path = handler.__module__
        self.handler_full_name = f"{handler.__module__}_{handler.__name__}"
        self.event_filters: list[Any] = []
        self.desc = (handler.__doc__ or "").strip()
        if "desc" in extras:
            self.desc = extras.pop("desc")
        extras.setdefault("priority", 0)
        self.extras_configs = extras

    @property
    def priority(self) -> int:
        return int(self.extras_configs.get("priority", 0))

    def __repr__(self) -> str:
        return f"<StarHandlerMetadata {self.event_type.name} {self.handler_full_name}>"


def get_handler_or_create(handler: Callable[..., Any], event_type: EventType,
                          **kwargs: Any) -> StarHandlerMetadata:
    """The record on `handler`, made on first use (its options come from the first
    decorator applied, the one nearest the function, as in AstrBot)."""
    if not callable(handler):
        raise TypeError(f"a filter decorator needs a function, got {handler!r}")
    md = getattr(handler, HANDLER_ATTR, None)
    if md is None:
        md = StarHandlerMetadata(event_type, handler, dict(kwargs))
        setattr(handler, HANDLER_ATTR, md)
    return md
