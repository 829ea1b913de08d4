"""`astrbot.api.event.filter` on convo_fsm: the decorators that make a plugin method a
handler, with AstrBot 4.29.3's names and arguments.

    @filter.command("quiz", alias={"q"}, priority=1)    # /quiz <params by signature>
    @filter.command_group("math")  then  @math.command("add")   # /math add 1 2
    @filter.event_message_type(filter.EventMessageType.GROUP_MESSAGE)   # every group message
    @filter.permission_type(filter.PermissionType.ADMIN)  # the host's admins only
    @filter.custom_filter(MyFilter)                       # MyFilter().filter(event, cfg)
    @filter.platform_adapter_type(filter.PlatformAdapterType.AIOCQHTTP)
    @filter.regex(r"^\\d+$")
    @filter.on_astrbot_loaded() / on_platform_loaded() / on_plugin_loaded()  # host start hooks

The LLM hooks (`on_llm_request`, `on_llm_response`, `on_decorating_result`, ...) and
`llm_tool` are recorded on the handler; `PluginHost` runs no LLM pipeline, so it never
calls them (its `llm_tools` lists the tools).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from convo_fsm.compat.astrbot.core.star.filter.command import CommandFilter
from convo_fsm.compat.astrbot.core.star.filter.command_group import CommandGroupFilter
from convo_fsm.compat.astrbot.core.star.filter.custom_filter import (
    CustomFilter,
    CustomFilterAnd,
    CustomFilterOr,
)
from convo_fsm.compat.astrbot.core.star.filter.event_message_type import (
    EventMessageType,
    EventMessageTypeFilter,
)
from convo_fsm.compat.astrbot.core.star.filter.permission import (
    PermissionType,
    PermissionTypeFilter,
)
from convo_fsm.compat.astrbot.core.star.filter.platform_adapter_type import (
    PlatformAdapterType,
    PlatformAdapterTypeFilter,
)
from convo_fsm.compat.astrbot.core.star.filter.regex import RegexFilter
from convo_fsm.compat.astrbot.core.star.star_handler import EventType, get_handler_or_create

__all__ = [
    "CustomFilter",
    "EventMessageType",
    "EventMessageTypeFilter",
    "PermissionType",
    "PermissionTypeFilter",
    "PlatformAdapterType",
    "PlatformAdapterTypeFilter",
    "RegisteringCommandable",
    "after_message_sent",
    "command",
    "command_group",
    "custom_filter",
    "event_message_type",
    "llm_tool",
    "on_agent_begin",
    "on_agent_done",
    "on_astrbot_loaded",
    "on_decorating_result",
    "on_llm_request",
    "on_llm_response",
    "on_llm_tool_respond",
    "on_platform_loaded",
    "on_plugin_error",
    "on_plugin_loaded",
    "on_plugin_unloaded",
    "on_using_llm_tool",
    "on_waiting_llm_request",
    "permission_type",
    "platform_adapter_type",
    "regex",
]

Decorator = Callable[[Any], Any]


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} needs a non-empty name, got {name!r}")
    return name


def command(command_name: Any = None, sub_command: str | None = None,
            alias: set[str] | None = None, **kwargs: Any) -> Decorator:
    """`/command_name` (and its aliases) runs the decorated method; the words after it
    fill the method's parameters by signature (see `CommandFilter`)."""
    if isinstance(command_name, RegisteringCommandable):  # @group.command("sub")
        new = CommandFilter(_check_name("a subcommand", sub_command), alias, None,
                            parent_command_names=command_name.parent_group
                            .get_complete_command_names())
        command_name.parent_group.add_sub_command_filter(new)
    else:
        new = CommandFilter(_check_name("filter.command", command_name), alias, None)

    def decorate(fn: Any) -> Any:
        md = get_handler_or_create(fn, EventType.AdapterMessageEvent, **kwargs)
        new.init_handler_md(md)
        md.event_filters.append(new)
        return fn

    return decorate


class RegisteringCommandable:
    """What `filter.command_group` returns in place of the method: `.command(name)`,
    `.group(name)` and `.custom_filter(F)` register below it."""

    def __init__(self, parent_group: CommandGroupFilter, handler_md: Any = None) -> None:
        self.parent_group = parent_group
        self.handler_md = handler_md

    def command(self, sub_command: str, alias: set[str] | None = None,
                **kwargs: Any) -> Decorator:
        return command(self, sub_command, alias, **kwargs)

    def group(self, sub_command: str, alias: set[str] | None = None,
              **kwargs: Any) -> Decorator:
        return command_group(self, sub_command, alias, **kwargs)

    def custom_filter(self, custom_type_filter: Any, *args: Any, **kwargs: Any) -> Decorator:
        return custom_filter(self, custom_type_filter, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<command group {self.parent_group.get_complete_command_names()}>"


def command_group(command_group_name: Any = None, sub_command: str | None = None,
                  alias: set[str] | None = None, **kwargs: Any) -> Decorator:
    """A command group: the decorated method's name becomes a `RegisteringCommandable`."""
    if isinstance(command_group_name, RegisteringCommandable):
        new = CommandGroupFilter(_check_name("a subgroup", sub_command), alias,
                                 parent_group=command_group_name.parent_group)
        command_group_name.parent_group.add_sub_command_filter(new)
    else:
        new = CommandGroupFilter(_check_name("filter.command_group", command_group_name),
                                 alias)

    def decorate(fn: Any) -> RegisteringCommandable:
        md = get_handler_or_create(fn, EventType.AdapterMessageEvent, **kwargs)
        md.event_filters.append(new)
        return RegisteringCommandable(new, md)

    return decorate


def custom_filter(custom_type_filter: Any, *args: Any, **kwargs: Any) -> Decorator:
    """Run the handler only when `custom_type_filter().filter(event, cfg)` is true (a
    `CustomFilter` subclass, or `A & B` / `A | B`)."""
    parent: RegisteringCommandable | None = None
    raise_error = True
    if isinstance(custom_type_filter, RegisteringCommandable):
        parent, the_filter = custom_type_filter, args[0]
        if len(args) > 1:
            raise_error = args[1]
    else:
        the_filter = custom_type_filter
        if args:
            raise_error = args[0]
    if not isinstance(the_filter, (CustomFilterAnd, CustomFilterOr)):
        if not (isinstance(the_filter, type) and issubclass(the_filter, CustomFilter)):
            raise TypeError(f"filter.custom_filter needs a CustomFilter subclass, "
                            f"got {the_filter!r}")
        the_filter = the_filter(raise_error)

    def decorate(fn: Any) -> Any:
        if isinstance(fn, RegisteringCommandable):
            fn.parent_group.add_custom_filter(the_filter)
        elif parent is not None:  # a subcommand of `parent`: its CommandFilter gets it
            md = get_handler_or_create(fn, EventType.AdapterMessageEvent, **kwargs)
            for sub in parent.parent_group.sub_command_filters:
                if isinstance(sub, CommandFilter) and sub.handler_md is md:
                    sub.add_custom_filter(the_filter)
        else:
            md = get_handler_or_create(fn, EventType.AdapterMessageEvent, **kwargs)
            md.event_filters.append(the_filter)
        return fn

    return decorate


def _with_filter(make: Callable[[], Any], **kwargs: Any) -> Decorator:
    def decorate(fn: Any) -> Any:
        md = get_handler_or_create(fn, EventType.AdapterMessageEvent, **kwargs)
        md.event_filters.append(make())
        return fn

    return decorate


def event_message_type(event_message_type: EventMessageType, **kwargs: Any) -> Decorator:
    """Every message of that type (group, private, ALL), woken or not."""
    return _with_filter(lambda: EventMessageTypeFilter(event_message_type), **kwargs)


def platform_adapter_type(platform_adapter_type: PlatformAdapterType,
                          **kwargs: Any) -> Decorator:
    return _with_filter(lambda: PlatformAdapterTypeFilter(platform_adapter_type), **kwargs)


def permission_type(permission_type: PermissionType, raise_error: bool = True,
                    **kwargs: Any) -> Decorator:
    """Only the host's admins (`PluginHost(admins=[...])`); others are told so (with
    `raise_error=True`, AstrBot's default) and the event stops."""
    return _with_filter(lambda: PermissionTypeFilter(permission_type, raise_error), **kwargs)


def regex(regex: str | re.Pattern[str], **kwargs: Any) -> Decorator:
    return _with_filter(lambda: RegexFilter(regex), **kwargs)


def _hook(event_type: EventType) -> Callable[..., Decorator]:
    def register(**kwargs: Any) -> Decorator:
        def decorate(fn: Any) -> Any:
            get_handler_or_create(fn, event_type, **kwargs)
            return fn

        return decorate

    register.__name__ = f"on_{event_type.name}"
    return register


on_astrbot_loaded = _hook(EventType.OnAstrBotLoadedEvent)
on_platform_loaded = _hook(EventType.OnPlatformLoadedEvent)
on_plugin_loaded = _hook(EventType.OnPluginLoadedEvent)
on_plugin_unloaded = _hook(EventType.OnPluginUnloadedEvent)
on_plugin_error = _hook(EventType.OnPluginErrorEvent)
on_waiting_llm_request = _hook(EventType.OnWaitingLLMRequestEvent)
on_llm_request = _hook(EventType.OnLLMRequestEvent)
on_llm_response = _hook(EventType.OnLLMResponseEvent)
on_agent_begin = _hook(EventType.OnAgentBeginEvent)
on_agent_done = _hook(EventType.OnAgentDoneEvent)
on_decorating_result = _hook(EventType.OnDecoratingResultEvent)
after_message_sent = _hook(EventType.OnAfterMessageSentEvent)
on_using_llm_tool = _hook(EventType.OnUsingLLMToolEvent)
on_llm_tool_respond = _hook(EventType.OnLLMToolRespondEvent)


def llm_tool(name: str | None = None, **kwargs: Any) -> Decorator:
    """An LLM function tool (recorded; the host lists it in `llm_tools`, never calls it)."""

    def decorate(fn: Any) -> Any:
        md = get_handler_or_create(fn, EventType.OnCallingFuncToolEvent, **kwargs)
        md.extras_configs["tool_name"] = name or fn.__name__
        return fn

    return decorate
