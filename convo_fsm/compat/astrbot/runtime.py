"""The runtime under the AstrBot layer: one convo_fsm `Engine` and what maps AstrBot's ideas
onto it.

- An AstrBot event enters the engine as an `EventView` (text, sender, group, platform and
  the `origin` event), so convo_fsm specs read it like a `convo_fsm.Message`.
- A `SessionFilter` class is a *filter kind* of the engine, registered the first time it is
  used (`Engine.add_filter`), never per session: routing costs one key per kind and one dict
  lookup each, however many sessions wait. Keys are `"<kind>|<filter result>"`, so two
  filter classes never collide.
- A session waiter is a one-state spec (`waiting`: any event -> keep, running the handler;
  a deadline set by `keep()`): the engine's heap does the timing, its turns serialise
  events per key, its stop/timeout cancel a running handler. One spec per handler and
  timeout, built once and cached; the handler itself lives in a side table, so each call
  of a decorated function defined inside a command does not build a spec.
- `start_spec` runs any convo_fsm `Spec` for an event (a plugin command that starts a game).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from convo_fsm.clock import Clock
from convo_fsm.context import Context, Reply
from convo_fsm.engine import Ended, Engine, SessionExists
from convo_fsm.spec import ANY, KEEP, STOP, On, Spec, State, Timeout

if TYPE_CHECKING:
    from convo_fsm.compat.astrbot.core.utils.session_waiter import (
        SessionController,
        SessionFilter,
    )

__all__ = [
    "EventView",
    "Runtime",
    "WaiterEnded",
    "WaiterExists",
    "default_runtime",
    "runtime_for",
    "set_default_runtime",
]

logger = logging.getLogger("convo_fsm.astrbot")

WAITER_STATE = "waiting"
_MANY_KINDS = 64  # filter kinds worth a warning (routing cost grows with kinds, not sessions)
_WAITER_ID = "astrbot_waiter"  # the session-data field naming the waiter (data stays JSON)


class AstrEvent(Protocol):
    """What the layer reads from an AstrBot event (compat or real)."""

    message_str: str

    def get_sender_id(self) -> str: ...

    def get_group_id(self) -> str: ...

    @property
    def unified_msg_origin(self) -> str: ...

    def get_messages(self) -> Any: ...


class EventView:
    """An AstrBot event as convo_fsm specs see it: `text`, `sender`, `group` (None outside
    groups), `platform`, like `convo_fsm.Message`; `origin` is the AstrBot event itself.
    Only `text` is read up front: waiters never need the rest."""

    __slots__ = ("origin", "text")

    def __init__(self, origin: Any) -> None:
        text = getattr(origin, "message_str", None)
        if not isinstance(text, str):
            raise TypeError(f"expected an AstrBot message event, got {type(origin).__name__}")
        self.origin = origin
        self.text = text

    @property
    def sender(self) -> str:
        return str(self.origin.get_sender_id())

    @property
    def group(self) -> str | None:
        return self.origin.get_group_id() or None

    @property
    def platform(self) -> str:
        umo: str = self.origin.unified_msg_origin
        return umo.split(":", 1)[0] or "unknown"

    def __repr__(self) -> str:
        return f"<EventView {self.platform}/{self.group}/{self.sender}: {self.text!r}>"


def member_key(view: EventView) -> str:
    """One session per sender within a chat (`convo_fsm.by_member` on an AstrBot event)."""
    if view.group is None:
        return f"{view.platform}:user:{view.sender}"
    return f"{view.platform}:group:{view.group}:{view.sender}"


def group_key(view: EventView) -> str:
    """One session per chat (`convo_fsm.by_group` on an AstrBot event)."""
    if view.group is None:
        return f"{view.platform}:user:{view.sender}"
    return f"{view.platform}:group:{view.group}"


SPEC_FILTERS: dict[str, Callable[[EventView], str]] = {"member": member_key, "group": group_key}


class WaiterExists(SessionExists):
    """A session waiter (or another session) already waits on this key: the new one is
    refused. Catch it in the plugin, or decorate with `session_waiter(..., replace=True)`."""

    def __init__(self, key: str, spec: str, state: str) -> None:
        super().__init__(key, spec, state)
        self.args = (f"a session is already waiting on {key!r} ({spec!r}); "
                     "this waiter was refused (replace=True takes the key over)",)


class WaiterEnded(RuntimeError):
    """The waiter ended for a reason other than stop/timeout/error: `replaced` by a newer
    waiter on its key, or `closed` when the host shut down."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"session waiter on {key!r} ended: {reason}")
        self.key = key
        self.reason = reason


class _Waiter:
    __slots__ = ("controller", "handler")

    def __init__(self, handler: Callable[..., Awaitable[Any]],
                 controller: SessionController) -> None:
        self.handler = handler
        self.controller = controller


ParkHook = Callable[["asyncio.Future[Ended]"], None]
park_hook: contextvars.ContextVar[ParkHook | None] = contextvars.ContextVar(
    "convo_fsm_astrbot_park_hook", default=None)
"""Set by a host around a plugin handler: told when the handler suspends in a waiter, with
the future that resumes it (so the host knows the handler is idle, not busy)."""


class Runtime:
    """One engine for AstrBot-style plugins. `send(reply)` receives what convo_fsm specs
    say (`ctx.reply`); waiters answer through their events instead."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        send: Callable[[Reply], object] | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self.engine = Engine(clock=clock, filters={}, send=self._reply, on_end=self._ended,
                             **(engine_options or {}))
        self._send = send
        self._kinds: dict[tuple[Any, ...], str] = {}
        self._kind_names: set[str] = set()
        self._waiter_specs: dict[tuple[str, float], Spec] = {}
        self._waiters: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self.origins: dict[str, Any] = {}  # key -> the AstrBot event that started a spec session

    # -- routing -----------------------------------------------------------------------------
    async def dispatch(self, event: Any) -> bool:
        """Give an AstrBot event to the session its key names (waiters and specs). False: no
        session took it; the host hands it to commands and ordinary handlers."""
        if not len(self.engine):
            return False
        return await self.engine.dispatch(EventView(event))

    def kind_for(self, session_filter: SessionFilter) -> str:
        """The engine's filter kind for a `SessionFilter`, registered on first use. The kind
        is the filter's class (plus its attributes, if hashable), so two instances of one
        filter class share it; routing calls the first instance."""
        cls = type(session_filter)
        attrs_ = getattr(session_filter, "__dict__", {})
        try:
            ident: tuple[Any, ...] = (cls.__module__, cls.__qualname__,
                                      frozenset(attrs_.items()))
            hash(ident)
        except TypeError:
            ident = (cls.__module__, cls.__qualname__, id(cls))
        kind = self._kinds.get(ident)
        if kind is None:
            base = f"astrbot:{cls.__module__}.{cls.__qualname__}"
            kind = base if base not in self._kind_names else f"{base}#{len(self._kinds)}"
            self.engine.add_filter(kind, _session_filter_fn(kind, session_filter))
            self._kinds[ident] = kind
            self._kind_names.add(kind)
            if len(self._kinds) == _MANY_KINDS:
                logger.warning(
                    "%d session filter kinds: every message is keyed once per kind. A filter "
                    "whose attributes differ per call (say, it stores a group id) makes a kind "
                    "per value; derive the key from the event instead", _MANY_KINDS)
        return kind

    def spec_kind(self, name: str) -> str:
        """The engine's filter kind for convo_fsm keying `name` ("member" or "group")."""
        fn = SPEC_FILTERS.get(name)
        if fn is None:
            raise ValueError(f"unknown filter {name!r}: use one of {sorted(SPEC_FILTERS)} "
                             "or a SessionFilter")
        kind = f"convo_fsm:{name}"
        if kind not in self._kind_names:
            self.engine.add_filter(kind, _view_filter_fn(kind, fn))
            self._kind_names.add(kind)
        return kind

    def key_for(self, event: Any, session_filter: Any) -> str:
        """The session key `session_filter` (a SessionFilter, or "member"/"group") gives
        `event`, as dispatch computes it."""
        from convo_fsm.compat.astrbot.core.utils.session_waiter import SessionFilter

        if isinstance(session_filter, str):
            kind = self.spec_kind(session_filter)
            return f"{kind}|{SPEC_FILTERS[session_filter](EventView(event))}"
        if not isinstance(session_filter, SessionFilter):
            raise ValueError(f"session_filter must be a SessionFilter, got {session_filter!r}")
        kind = self.kind_for(session_filter)
        raw = session_filter.filter(event)
        if not isinstance(raw, str) or not raw:
            raise ValueError(f"{type(session_filter).__name__}.filter() must return a "
                             f"non-empty str, got {raw!r}")
        return f"{kind}|{raw}"

    # -- convo_fsm specs ----------------------------------------------------------------------
    async def start_spec(self, spec: Spec, event: Any, *, filter: Any = "member",
                         data: dict[str, Any] | None = None, replace: bool = False) -> str:
        """Start `spec` for the chat of `event` (keyed by `filter`); later events on that key
        go to it through `dispatch`. Its enter action sees the event. Returns the key.
        A live session on the key: `SessionExists`, unless `replace`."""
        key = self.key_for(event, filter)
        self.origins[key] = event
        try:
            await self.engine.start(spec, key, data=data, event=EventView(event),
                                    replace=replace)
        finally:
            if key not in self.engine:
                self.origins.pop(key, None)
        return key

    # -- session waiters ---------------------------------------------------------------------
    def waiter_spec(self, handler: Callable[..., Any], timeout: float) -> Spec:
        """The one-state spec of waiters of `handler` with `timeout`; built once."""
        name = f"astrbot.waiter:{handler.__module__}.{handler.__qualname__}/{timeout:g}s"
        ident = (name, timeout)
        spec = self._waiter_specs.get(ident)
        if spec is None:
            spec = Spec(
                name=name,
                initial=WAITER_STATE,
                states=[State(WAITER_STATE,
                              on=[On(ANY, KEEP, action=self._run_handler, reset_timeout=False)],
                              timeout=Timeout(timeout, STOP))],
                classify=_any_event,
            )
            self._waiter_specs[ident] = spec
        return spec

    async def wait(self, handler: Callable[..., Awaitable[Any]], event: Any,
                   session_filter: SessionFilter, timeout: float, record: bool,
                   replace: bool) -> Any:
        """`await waiter(event)`: see `session_waiter`."""
        from convo_fsm.compat.astrbot.core.utils.session_waiter import SessionController

        key = self.key_for(event, session_filter)
        if timeout <= 0:
            return None  # AstrBot: keep(timeout <= 0, reset_timeout=True) ends at once
        spec = self.waiter_spec(handler, timeout)
        engine = self.engine
        wid = next(self._ids)
        controller = SessionController(self, key, record)
        self._waiters[wid] = _Waiter(handler, controller)
        try:
            try:
                session = await engine.start(spec, key, data={_WAITER_ID: wid},
                                             event=EventView(event), replace=replace)
            except SessionExists as exc:
                live = engine.session(key)
                raise WaiterExists(key, live.spec if live else "?",
                                   live.state if live else "?") from exc
            controller._bind(session.data)
            ended_fut = engine.wait_ended(key)
            controller.keep(timeout, reset_timeout=True)
            hook = park_hook.get()
            if hook is not None and not ended_fut.done():
                hook(ended_fut)
            ended = await ended_fut
        finally:
            del self._waiters[wid]
            controller._stop_quietly()  # our caller was cancelled: the session goes too
        if ended.reason == "stopped":
            if controller.error is not None:
                raise controller.error
            return None
        if ended.reason == "timeout":
            raise TimeoutError(f"session waiter on {key!r} timed out")
        if ended.reason == "error" and ended.error is not None:
            raise ended.error
        raise WaiterEnded(key, ended.reason)

    async def _run_handler(self, ctx: Context) -> None:
        waiter = self._waiters.get(ctx.data[_WAITER_ID])
        if waiter is None:
            return
        event = ctx.event.origin
        controller = waiter.controller
        if controller.record_history_chains:
            controller.history_chains.append([copy.deepcopy(c) for c in event.get_messages()])
        await waiter.handler(controller, event)

    # -- engine hooks --------------------------------------------------------------------------
    def _reply(self, reply: Reply) -> object:
        if self._send is not None:
            return self._send(reply)
        return self.send_via_origin(reply)

    def send_via_origin(self, reply: Reply) -> object:
        """Default outlet for spec replies: through the AstrBot event that caused them (a
        timer's reply: the event that started the session, which names the same chat)."""
        view = reply.event
        origin = view.origin if isinstance(view, EventView) else self.origins.get(reply.to)
        if origin is None:
            logger.warning("no chat known for %r: reply %r dropped", reply.to, reply.text)
            return None
        return origin.send(_plain_chain(origin, reply.text))

    def _ended(self, ended: Ended) -> None:
        self.origins.pop(ended.session.key, None)


def _plain_chain(origin: Any, text: str) -> Any:
    make = getattr(origin, "plain_result", None)
    if make is not None:
        return make(text)
    from convo_fsm.compat.astrbot.api.event import MessageChain

    return MessageChain().message(text)


def _any_event(_: Any) -> str:
    return "message"


def _session_filter_fn(kind: str, session_filter: SessionFilter) -> Callable[[Any], str | None]:
    def key(view: EventView) -> str | None:
        try:
            raw = session_filter.filter(view.origin)
        except Exception:
            # One plugin's broken filter must not break every message of the bot.
            logger.exception("session filter %s failed on %r; event not routed by it", kind, view)
            return None
        return f"{kind}|{raw}" if isinstance(raw, str) and raw else None

    return key


def _view_filter_fn(kind: str, fn: Callable[[EventView], str]) -> Callable[[Any], str | None]:
    def key(view: EventView) -> str | None:
        return f"{kind}|{fn(view)}"

    return key


_default: Runtime | None = None


def default_runtime() -> Runtime:
    """The process-wide runtime (real time) used for events no host bound to a runtime."""
    global _default
    if _default is None:
        _default = Runtime()
    return _default


def set_default_runtime(runtime: Runtime | None) -> None:
    """Replace the process-wide runtime (None: a fresh one on next use)."""
    global _default
    _default = runtime


def runtime_for(event: Any) -> Runtime:
    """The runtime an event belongs to: the host's that built it, else the default."""
    runtime = getattr(event, "_convo_fsm_runtime", None)
    return runtime if isinstance(runtime, Runtime) else default_runtime()
