"""convo_fsm inside real AstrBot (extra `astrbot`: astrbot==4.29.3, Python >= 3.12).

A plugin running in AstrBot uses convo_fsm's engine for its conversations: routing in O(1)
per filter class, one timer heap, per-key turns, and none of AstrBot's session bugs.

    from astrbot.api.event import AstrMessageEvent, filter
    from astrbot.api.star import Context, Star
    from convo_fsm.adapters.astrbot import (
        SessionController, route_listener, session_waiter, spec_command)

    class MyPlugin(Star):
        convo_fsm_route = route_listener()         # later messages reach our sessions first
        quiz = spec_command("quiz", quiz_spec)     # any convo_fsm Spec as a command

        @filter.command("idiom-chain")
        async def idiom(self, event: AstrMessageEvent):
            @session_waiter(timeout=60)            # AstrBot's API, our engine
            async def waiter(controller: SessionController, event: AstrMessageEvent): ...
            await waiter(event)

`route_listener()` registers (in the calling plugin's module, as AstrBot expects) a
listener for every message, with the highest priority, that hands the event to the
engine; when a session takes it, the event is stopped, so no other handler sees it.
Without the listener, call `await route(event)` yourself at the top of your handlers.

Real `AstrMessageEvent`s are used as they are: waiter handlers get the real event and
answer with `event.send(...)`; convo_fsm specs see it through an `EventView` (`ctx.text`,
`ctx.event.sender`, `.group`, `.origin`) and their `ctx.reply` goes out through
`event.send(event.plain_result(text))` (a timer's reply through the event that started
the session). AstrBot's own `SessionFilter` subclasses are accepted as filters too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from astrbot.api.event import filter as astrbot_filter
from astrbot.core.utils import session_waiter as astrbot_session_waiter

from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    DefaultSessionFilter,
    SessionController,
    SessionFilter,
    session_waiter,
)
from convo_fsm.compat.astrbot.runtime import (
    EventView,
    Runtime,
    WaiterEnded,
    WaiterExists,
    default_runtime,
    set_default_runtime,
)
from convo_fsm.compat.astrbot.specs import BUSY_TEXT, opening_for
from convo_fsm.engine import SessionExists
from convo_fsm.spec import Spec, StartError

__all__ = [
    "DefaultSessionFilter",
    "EventView",
    "Runtime",
    "SessionController",
    "SessionFilter",
    "WaiterEnded",
    "WaiterExists",
    "default_runtime",
    "route",
    "route_listener",
    "session_waiter",
    "set_default_runtime",
    "spec_command",
    "start_spec",
]

# AstrBot's filter classes key sessions as well as ours do: accept them as filters.
SessionFilter.register(astrbot_session_waiter.SessionFilter)

ROUTE_PRIORITY = sys.maxsize
"""The listener's priority: before every other handler."""


async def route(event: Any) -> bool:
    """Give a real AstrBot event to convo_fsm's sessions. True (and the event stopped) when
    a session took it; False: let AstrBot's handlers have it."""
    if await default_runtime().dispatch(event):
        event.stop_event()
        return True
    return False


async def start_spec(event: Any, spec: Spec, *, filter: Any = "member",
                     replace: bool = False, data: dict[str, Any] | None = None) -> str:
    """Start convo_fsm `spec` for the chat of a real event (see `Runtime.start_spec`)."""
    return await default_runtime().start_spec(spec, event, filter=filter, replace=replace,
                                              data=data)


def _caller_module(depth: int = 2) -> str:
    return str(sys._getframe(depth).f_globals.get("__name__", __name__))


def _as_plugin_method(fn: Callable[..., Any], name: str, module: str) -> None:
    # AstrBot files a handler under its module (the plugin's) and name.
    fn.__module__ = module
    fn.__name__ = name
    fn.__qualname__ = name


def route_listener(priority: int = ROUTE_PRIORITY) -> Callable[..., Any]:
    """A `Star` method (assign it in the class body) that routes every message to
    convo_fsm's sessions before any other handler, registered in the caller's module."""

    async def convo_fsm_route(self: Any, event: Any) -> None:
        await route(event)

    _as_plugin_method(convo_fsm_route, "convo_fsm_route", _caller_module())
    return astrbot_filter.event_message_type(  # type: ignore[no-any-return]
        astrbot_filter.EventMessageType.ALL, priority=priority)(convo_fsm_route)


def spec_command(name: str, spec: Spec, *, filter: Any = None,
                 alias: Iterable[str] | None = None, replace: bool = False,
                 data: Callable[[Any], dict[str, Any]] | None = None,
                 busy_text: str = BUSY_TEXT) -> Callable[..., Any]:
    """A `Star` method answering `/name` by starting convo_fsm `spec` for the sender's chat
    (`filter`: "member", "group" or a SessionFilter; by default the kind the spec's `start`
    declares), registered in the caller's module. The spec's `start` parses the command's
    arguments unless `data(event)` is given (bad ones are answered with the error).
    Needs `route_listener()` in the plugin so later messages reach the session."""
    if not isinstance(spec, Spec):
        raise TypeError(f"spec_command needs a Spec, got {type(spec).__name__}")

    async def handler(self: Any, event: Any) -> None:
        try:
            first, how = opening_for(spec, event, filter, data)
        except StartError as exc:
            await event.send(event.plain_result(str(exc)))
            event.stop_event()
            return
        try:
            await start_spec(event, spec, filter=how, replace=replace, data=first)
        except SessionExists:
            await event.send(event.plain_result(busy_text.format(spec=spec.name)))
        event.stop_event()

    _as_plugin_method(handler, f"convo_fsm_{name.replace('-', '_')}", _caller_module())
    aliases = set(alias) if alias else None
    return astrbot_filter.command(name, alias=aliases)(handler)  # type: ignore[no-any-return]
