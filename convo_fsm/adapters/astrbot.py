"""convo_fsm inside real AstrBot (extra `astrbot`: astrbot==4.29.3, Python >= 3.12).

A plugin moves to convo_fsm's engine by changing one import:

    from astrbot.core.utils.session_waiter import session_waiter, SessionController
    ->  from convo_fsm.adapters.astrbot import session_waiter, SessionController

Everything else stays AstrBot's. Importing this module (whichever plugin does it first)
registers convo_fsm's routing with AstrBot itself, once: one entry in AstrBot's own
`FILTERS`/`USER_SESSIONS` that its pipeline already asks for every message (its waking
stage, to wake the bot for a waiting session; its process stage, to hand the message to
the session before any handler). So no line is added to the plugin class. The names of
`astrbot.core.utils.session_waiter` are all here: `USER_SESSIONS` (a live mapping of
session id -> `SessionWaiter` with its `session_controller`), `FILTERS`, `SessionWaiter`,
`SessionFilter` (AstrBot's own subclasses are accepted too), `DefaultSessionFilter`.

What differs from AstrBot's waiter is its bugs, fixed (README, "AstrBot plugins"): the
default key is per sender within a chat (`configure(default_key="origin")` restores
AstrBot's per-chat key), a message queued for a session that ends first goes back through
the pipeline (AstrBot swallowed it), a timeout or stop cancels a handler still running,
and a second waiter on a live key is refused with `WaiterExists` unless `replace=True`.

Zero-change mode: `install()` (what the plugin `write_zero_change_plugin(data/plugins)`
writes calls) puts these names into `astrbot.core.utils.session_waiter` itself, so plugins
imported after it use convo_fsm without any change, and rebinds the names in plugin
modules imported before it. It leaves AstrBot's own modules (its built-in stars) and
waiters already running on AstrBot's waiter alone (they coexist).

Real `AstrMessageEvent`s are used as they are: waiter handlers get the real event and
answer with `event.send(...)`; convo_fsm specs (`spec_command`, `start_spec`) see it
through an `EventView` and their `ctx.reply` goes out through `event.send(...)`.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from astrbot.api.event import filter as astrbot_filter
from astrbot.core.utils import session_waiter as astrbot_session_waiter

from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    FILTERS,
    USER_SESSIONS,
    DefaultSessionFilter,
    SessionController,
    SessionFilter,
    SessionWaiter,
    session_waiter,
)
from convo_fsm.compat.astrbot.runtime import (
    EventView,
    Runtime,
    WaiterEnded,
    WaiterExists,
    default_runtime,
    set_default_options,
    set_default_runtime,
)
from convo_fsm.compat.astrbot.specs import BUSY_TEXT, command_handler
from convo_fsm.spec import Spec

__all__ = [
    "FILTERS",
    "USER_SESSIONS",
    "DefaultSessionFilter",
    "EventView",
    "Runtime",
    "SessionController",
    "SessionFilter",
    "SessionWaiter",
    "WaiterEnded",
    "WaiterExists",
    "configure",
    "default_runtime",
    "install",
    "route",
    "route_listener",
    "session_waiter",
    "set_default_runtime",
    "spec_command",
    "start_spec",
    "write_zero_change_plugin",
]

# AstrBot's filter classes key sessions as well as ours do: accept them as filters.
SessionFilter.register(astrbot_session_waiter.SessionFilter)

# AstrBot's own objects, as imported before any install() replaced one.
_ASTRBOT_ORIGINALS: dict[str, Any] = {
    n: getattr(astrbot_session_waiter, n)
    for n in ("session_waiter", "SessionController", "SessionWaiter", "DefaultSessionFilter")}

ROUTE_PRIORITY = sys.maxsize
"""The listener's priority: before every other handler."""

ROUTER_ID = "convo_fsm:router"
"""The session id of convo_fsm's one entry in AstrBot's `USER_SESSIONS`."""
_NO_ROUTE = "convo_fsm:no-session"  # never a key of USER_SESSIONS
logger = logging.getLogger("convo_fsm.astrbot")


class _Router(astrbot_session_waiter.SessionFilter):  # type: ignore[misc]
    """In AstrBot's `FILTERS`: names convo_fsm's router for an event some convo_fsm
    session waits for (no await, no delivery: AstrBot calls this while waking too)."""

    convo_fsm_router = True

    def filter(self, event: Any) -> str:
        try:
            key = default_runtime().route_key(event)
        except Exception:
            logger.exception("convo_fsm routing failed on %r", event)
            return _NO_ROUTE
        if key is None:
            return _NO_ROUTE
        event._convo_fsm_route = key  # the handler delivers there: no second routing
        return ROUTER_ID


class _Never:
    """A future that is never done: AstrBot asks `session_controller.future.done()`."""

    def done(self) -> bool:
        return False


class _RouterController:
    future = _Never()

    def stop(self, error: BaseException | None = None) -> None:
        if error is not None:  # AstrBot calls this when the handler (our dispatch) raised
            logger.error("convo_fsm routing raised %r", error, exc_info=error)


class _NoLock:
    """convo_fsm's engine serialises per session key; AstrBot's per-waiter lock would
    serialise every convo_fsm session behind one."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class _RouterSession:
    """convo_fsm's entry in AstrBot's `USER_SESSIONS`: `SessionWaiter.trigger` calls its
    handler, which gives the event to the engine."""

    convo_fsm_router = True
    session_id = ROUTER_ID
    record_history_chains = False

    def __init__(self) -> None:
        self.session_filter = _Router()
        self.session_controller = _RouterController()
        self._lock = _NoLock()

    async def handler(self, controller: Any, event: Any) -> None:
        runtime = default_runtime()
        key = getattr(event, "_convo_fsm_route", None)
        if key is not None:
            del event._convo_fsm_route
            taken = await runtime.engine.deliver(key, EventView(event))
        else:
            taken = await runtime.dispatch(event)
        if not taken:
            _hand_back(event)


def _hand_back(event: Any) -> None:
    """The session ended before the event's turn: AstrBot has already stopped the event,
    so a copy runs through the pipeline again (the re-dispatch plugins use)."""
    from astrbot.core.star.star_tools import StarTools

    context = getattr(StarTools, "_context", None)
    if context is None:
        logger.warning("no AstrBot context: %r, handed back by an ended session, is dropped",
                       event)
        return
    again = copy.copy(event)
    again.clear_result()
    again.continue_event()
    context.get_event_queue().put_nowait(again)


def _install_router() -> None:
    """Register the router with AstrBot once per process (idempotent)."""
    filters = astrbot_session_waiter.FILTERS
    if not any(getattr(f, "convo_fsm_router", False) for f in filters):
        router = _RouterSession()
        filters.insert(0, router.session_filter)
        astrbot_session_waiter.USER_SESSIONS[ROUTER_ID] = router
    elif ROUTER_ID not in astrbot_session_waiter.USER_SESSIONS:
        astrbot_session_waiter.USER_SESSIONS[ROUTER_ID] = _RouterSession()


def configure(*, default_key: str | None = None) -> None:
    """Choose what `DefaultSessionFilter` keys by: "sender" (default: each member of a
    group on their own) or "origin" (AstrBot 4.29.3: the chat's unified_msg_origin)."""
    if default_key is not None:
        set_default_options(default_key=default_key)


_ZERO_CHANGE = ("session_waiter",)
"""What install() replaces in `astrbot.core.utils.session_waiter` itself: AstrBot's own
functions look the module's other names up when they run (its waiter builds
`DefaultSessionFilter()`, `SessionWaiter(...)`, `SessionController()`), so those stay."""
_REBOUND = ("session_waiter", "SessionController", "SessionWaiter", "DefaultSessionFilter")
"""What install() rebinds in plugin modules already imported."""


class _MirrorEntry:
    """A convo_fsm waiter as an entry of AstrBot's own `USER_SESSIONS` (zero-change
    mode): `session_controller` is convo_fsm's; AstrBot's `trigger` on its id delivers
    through convo_fsm's engine."""

    record_history_chains = False

    def __init__(self, runtime: Runtime, waiter: Any) -> None:
        self._runtime = runtime
        self.session_id = waiter.session_id
        self.session_filter = waiter.session_filter
        self.session_controller = waiter.session_controller
        self._key = waiter.key
        self._lock = _NoLock()

    async def handler(self, controller: Any, event: Any) -> None:
        if not await self._runtime.engine.deliver(self._key, EventView(event)):
            _hand_back(event)


class _AstrBotSessions:
    """The zero-change mode's mirror: AstrBot's own USER_SESSIONS dict."""

    @property
    def sessions(self) -> Any:
        return astrbot_session_waiter.USER_SESSIONS

    def entry(self, runtime: Runtime, waiter: Any) -> _MirrorEntry:
        return _MirrorEntry(runtime, waiter)


def install(*, rebind_loaded: bool = True) -> None:
    """Zero-change mode. `astrbot.core.utils.session_waiter.session_waiter` becomes
    convo_fsm's, so plugins imported after this run their waiters on convo_fsm
    unchanged; with `rebind_loaded`, plugin modules already imported get convo_fsm's
    `session_waiter`, `SessionController`, `SessionWaiter` and `DefaultSessionFilter` in
    place of AstrBot's (under whatever names they imported them). AstrBot's own modules
    (its pipeline, its built-in stars) keep AstrBot's objects, and so does a plugin
    imported later for every name but `session_waiter` (its `DefaultSessionFilter()`
    keys by chat, as AstrBot's does; a `SessionWaiter` it builds is AstrBot's). AstrBot's
    `USER_SESSIONS` lists convo_fsm's live waiters too, so reach-ins find them.
    Idempotent."""
    here = sys.modules[__name__]
    for name in _ZERO_CHANGE:
        setattr(astrbot_session_waiter, name, getattr(here, name))
    set_default_options(mirror=_AstrBotSessions())
    if not rebind_loaded:
        return
    swap = {id(_ASTRBOT_ORIGINALS[n]): getattr(here, n) for n in _REBOUND}
    for module in list(sys.modules.values()):
        mod_name = getattr(module, "__name__", "")
        if not isinstance(mod_name, str) or mod_name.split(".", 1)[0] in ("astrbot",
                                                                           "convo_fsm"):
            continue
        for attr, value in list(getattr(module, "__dict__", {}).items()):
            if callable(value) and id(value) in swap:
                setattr(module, attr, swap[id(value)])


ZERO_CHANGE_PLUGIN = {
    "main.py": (
        '"""convo_fsm for every plugin: AstrBot\'s session control runs on convo_fsm\'s\n'
        'engine (convo_fsm.adapters.astrbot.install). Written by\n'
        'convo_fsm.adapters.astrbot.write_zero_change_plugin."""\n\n'
        "from astrbot.api.star import Context, Star, register\n\n"
        "from convo_fsm.adapters.astrbot import install\n\n"
        "install()\n\n\n"
        '@register("convo_fsm", "convo_fsm", "session control on convo_fsm", "1.0.0")\n'
        "class ConvoFsm(Star):\n"
        "    def __init__(self, context: Context):\n"
        "        super().__init__(context)\n"
        "        install()  # again: plugins imported since this module was\n"),
    "metadata.yaml": ("name: convo_fsm\nauthor: convo_fsm\n"
                      "desc: AstrBot's session control on convo_fsm's engine\nversion: 1.0.0\n"),
}


def write_zero_change_plugin(plugins_dir: str | os.PathLike[str]) -> Path:
    """Write the zero-change plugin (a folder `astrbot_plugin_convo_fsm` with `main.py`
    and `metadata.yaml`) into AstrBot's plugin folder (`data/plugins`); returns it."""
    folder = Path(plugins_dir) / "astrbot_plugin_convo_fsm"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in ZERO_CHANGE_PLUGIN.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


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
    convo_fsm's sessions before any other handler, registered in the caller's module.
    Not needed any more (importing this module registers the routing with AstrBot);
    kept so plugins written with it keep working."""

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
    Later messages reach the session through the routing this module registers."""
    async def start(event: Any, how: Any, first: dict[str, Any] | None) -> None:
        await start_spec(event, spec, filter=how, replace=replace, data=first)

    handler = command_handler(spec, start, filter=filter, data=data, busy_text=busy_text)

    _as_plugin_method(handler, f"convo_fsm_{name.replace('-', '_')}", _caller_module())
    aliases = set(alias) if alias else None
    return astrbot_filter.command(name, alias=aliases)(handler)  # type: ignore[no-any-return]


_install_router()
