"""The runtime under the AstrBot layer: one convo_fsm `Engine` and what maps AstrBot's ideas
onto it.

- An AstrBot event enters the engine as an `EventView` (text, sender, group, platform and
  the `origin` event), so convo_fsm specs read it like a `convo_fsm.Message`.
- A `SessionFilter` class name is a *filter kind* of the engine, registered the first time
  it is used (`Engine.add_filter`), never per session. The kind asks the filter instances
  that key live sessions (one per class and attribute values, held while their sessions
  live): a filter class defined inside a handler routes by its own instance, and per-call
  attribute values cost nothing once their sessions are over. Keys are
  `"<kind>|<filter result>"`, so two filter classes never collide.
- A session waiter is a one-state spec (`waiting`: any event -> keep, running the handler;
  a deadline set by `keep()`): the engine's heap does the timing, its turns serialise
  events per key, its stop/timeout cancel a running handler. One spec per handler name
  (the timeout is each session's deadline, not part of the spec), built once and cached;
  the handler itself lives in a side table, so each call of a decorated function defined
  inside a command does not build a spec.
- `start_spec` runs any convo_fsm `Spec` for an event (a plugin command that starts a game).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

from convo_fsm.clock import Clock
from convo_fsm.compat.astrbot.context import current_host
from convo_fsm.context import Context, Reply
from convo_fsm.engine import Ended, Engine, SessionExists
from convo_fsm.spec import ANY, KEEP, STOP, On, Spec, State, Timeout

if TYPE_CHECKING:
    from convo_fsm.compat.astrbot.core.utils.session_waiter import (
        SessionFilter,
        SessionWaiter,
    )

__all__ = [
    "EventView",
    "Runtime",
    "WaiterEnded",
    "WaiterExists",
    "current_runtime",
    "default_runtime",
    "runtime_for",
    "set_default_options",
    "set_default_runtime",
]

logger = logging.getLogger("convo_fsm.astrbot")

WAITER_STATE = "waiting"
DEFAULT_KEYS = ("sender", "origin")
_MANY_LIVE = 64  # live instances of one filter class worth a warning (each is called per message)
_NOMINAL_TIMEOUT = 30.0  # a waiter spec's own timeout: keep() replaces it before any time passes
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
        # The text as the user sent it (AstrBot's waking stage strips the wake prefix from
        # `message_str`; `message_obj.message_str` keeps it): specs see `/stop` as typed.
        text = getattr(getattr(origin, "message_obj", None), "message_str", None)
        if isinstance(text, str) and text.strip():
            text = text.strip()
        else:
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


class Mirror(Protocol):
    """A second registry of live waiters: `sessions[session_id] = entry(runtime, waiter)`
    while the waiter lives."""

    sessions: Any

    def entry(self, runtime: Runtime, waiter: Any) -> Any: ...


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
        default_key: str = "sender",
        mirror: Mirror | None = None,
    ) -> None:
        self.mirror = mirror
        """Where live waiters are also listed (the AstrBot adapter's zero-change mode:
        AstrBot's own `USER_SESSIONS` dict, so plugins reaching into it find them)."""
        if default_key not in DEFAULT_KEYS:
            raise ValueError(f"default_key must be one of {DEFAULT_KEYS}, got {default_key!r}")
        self.default_key = default_key
        """What `DefaultSessionFilter` keys by: "sender" (each member of a group on their
        own, as AstrBot's docs promise) or "origin" (AstrBot 4.29.3's code: the chat's
        unified_msg_origin, so a group shares one session)."""
        self.engine = Engine(clock=clock, filters={}, send=self._reply, on_end=self._ended,
                             **(engine_options or {}))
        self._send = send
        self._filter_kinds: dict[str, _FilterKind] = {}
        self._kind_names: set[str] = set()
        self._routes: list[Callable[[EventView], str | None]] = []  # each kind's, in order
        # key -> (kind, instance ident, session data) of the SessionFilter keying it
        self._held: dict[str, tuple[_FilterKind, Hashable, dict[str, Any]]] = {}
        self._waiter_specs: dict[str, Spec] = {}
        self._waiters: dict[int, Any] = {}  # waiter id -> SessionWaiter
        self.user_sessions: dict[str, Any] = {}  # filter result -> live SessionWaiter
        self._ids = itertools.count(1)
        self.origins: dict[str, Any] = {}  # key -> the AstrBot event that started a spec session

    # -- routing -----------------------------------------------------------------------------
    async def dispatch(self, event: Any) -> bool:
        """Give an AstrBot event to the session its key names (waiters and specs). False: no
        session took it; the host hands it to commands and ordinary handlers."""
        if not len(self.engine):
            return False
        return await self.engine.dispatch(EventView(event))

    def route_key(self, event: Any) -> str | None:
        """The key of the live session `dispatch` would give `event` to, or None; no
        await, no delivery (AstrBot's waking stage asks this of its waiters too)."""
        if not len(self.engine):
            return None
        view = EventView(event)
        for route in self._routes:
            key = route(view)
            if key is not None and key in self.engine:
                return key
        return None

    def kind_for(self, session_filter: SessionFilter) -> str:
        """The engine's filter kind for a `SessionFilter`: one per filter class *name*
        (module and qualname), registered the first time it is seen. Routing through the
        kind asks the live filter instances of that name (see `_FilterKind`), so a class
        defined inside a handler, or one holding per-call attributes, keys each session by
        its own instance, and a kind whose sessions have all ended costs one empty check."""
        cls = type(session_filter)
        name = f"astrbot:{cls.__module__}.{cls.__qualname__}"
        if name not in self._filter_kinds:
            kind = _FilterKind(name, self.engine)
            self.engine.add_filter(name, kind.route)
            self._routes.append(kind.route)
            self._filter_kinds[name] = kind
            self._kind_names.add(name)
        return name

    def _hold(self, key: str, session_filter: Any, token: dict[str, Any]) -> None:
        """The session now on `key` (its data dict `token`) was keyed by `session_filter`:
        routing asks that instance until the session ends."""
        if isinstance(session_filter, str):
            return  # convo_fsm's own "member"/"group" kinds need no instance
        kind = self._filter_kinds[self.kind_for(session_filter)]
        ident = kind.hold(session_filter)
        old = self._held.pop(key, None)
        if old is not None:
            old[0].release(old[1])
        self._held[key] = (kind, ident, token)

    def spec_kind(self, name: str) -> str:
        """The engine's filter kind for convo_fsm keying `name` ("member" or "group")."""
        fn = SPEC_FILTERS.get(name)
        if fn is None:
            raise ValueError(f"unknown filter {name!r}: use one of {sorted(SPEC_FILTERS)} "
                             "or a SessionFilter")
        kind = f"convo_fsm:{name}"
        if kind not in self._kind_names:
            route = _view_filter_fn(kind, fn)
            self.engine.add_filter(kind, route)
            self._routes.append(route)
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
            session = await self.engine.start(spec, key, data=data, event=EventView(event),
                                              replace=replace)
        finally:
            if key not in self.engine:
                self.origins.pop(key, None)
        live = self.engine.session(key)
        if live is not None and live.data is session.data:
            self._hold(key, filter, session.data)
        return key

    # -- session waiters ---------------------------------------------------------------------
    def waiter_spec(self, handler: Callable[..., Any]) -> Spec:
        """The one-state spec of the waiters of `handler`, built once per handler name
        (module and qualname: a handler defined inside a command is one spec however often
        it is decorated). The timeout is not part of it: `keep()` sets each session's
        deadline, so a timeout taken from user input makes no spec of its own."""
        name = f"astrbot.waiter:{handler.__module__}.{handler.__qualname__}"
        spec = self._waiter_specs.get(name)
        if spec is None:
            spec = Spec(
                name=name,
                initial=WAITER_STATE,
                states=[State(WAITER_STATE,
                              on=[On(ANY, KEEP, action=self._run_handler, reset_timeout=False)],
                              timeout=Timeout(_NOMINAL_TIMEOUT, STOP))],
                classify=_any_event,
            )
            self._waiter_specs[name] = spec
        return spec

    async def wait(self, handler: Callable[..., Awaitable[Any]], event: Any,
                   session_filter: SessionFilter, timeout: float, record: bool,
                   replace: bool) -> Any:
        """`await waiter(event)`: see `session_waiter`."""
        from convo_fsm.compat.astrbot.core.utils.session_waiter import SessionWaiter

        key = self.key_for(event, session_filter)
        waiter = SessionWaiter(session_filter, key.split("|", 1)[1], record)
        return await self.run_waiter(waiter, handler, timeout, key, event, replace)

    async def run_waiter(self, waiter: SessionWaiter, handler: Callable[..., Awaitable[Any]],
                         timeout: float, key: str, event: Any, replace: bool) -> Any:
        """Run `waiter` (a `SessionWaiter`) on engine key `key` until its session ends."""
        from convo_fsm.compat.astrbot.core.utils.session_waiter import SessionController

        if timeout <= 0:
            return None  # AstrBot: keep(timeout <= 0, reset_timeout=True) ends at once
        spec = self.waiter_spec(handler)
        engine = self.engine
        mirror, mirrored = None, None
        wid = next(self._ids)
        controller = SessionController(self, key, waiter.record_history_chains)
        waiter.handler = handler
        waiter.session_controller = controller
        waiter.key = key
        self._waiters[wid] = waiter
        try:
            try:
                session = await engine.start(spec, key, data={_WAITER_ID: wid},
                                             event=None if event is None else EventView(event),
                                             replace=replace)
            except SessionExists as exc:
                live = engine.session(key)
                raise WaiterExists(key, live.spec if live else "?",
                                   live.state if live else "?") from exc
            controller._bind(session.data)
            self._hold(key, waiter.session_filter, session.data)
            self.user_sessions[waiter.session_id] = waiter
            mirror = self.mirror
            if mirror is not None:
                mirrored = mirror.entry(self, waiter)
                mirror.sessions[waiter.session_id] = mirrored
            ended_fut = engine.wait_ended(key)
            controller.keep(timeout, reset_timeout=True)
            hook = park_hook.get()
            if hook is not None and not ended_fut.done():
                hook(ended_fut)
            ended = await ended_fut
        finally:
            del self._waiters[wid]
            if self.user_sessions.get(waiter.session_id) is waiter:
                del self.user_sessions[waiter.session_id]  # never a newer waiter's entry
            if mirror is not None and mirror.sessions.get(waiter.session_id) is mirrored:
                del mirror.sessions[waiter.session_id]
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

    def live_filters(self) -> list[Any]:
        """The SessionFilter instances keying live sessions (AstrBot's `FILTERS`)."""
        return [entry[0] for kind in self._filter_kinds.values() for entry in kind.live.values()]

    async def _run_handler(self, ctx: Context) -> None:
        waiter = self._waiters.get(ctx.data[_WAITER_ID])
        if waiter is None:
            return
        event = ctx.event.origin
        controller = waiter.session_controller
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
        key = ended.session.key
        self.origins.pop(key, None)
        held = self._held.get(key)
        if held is not None and held[2] is ended.session.data:
            del self._held[key]
            held[0].release(held[1])


def _plain_chain(origin: Any, text: str) -> Any:
    make = getattr(origin, "plain_result", None)
    if make is not None:
        return make(text)
    from convo_fsm.compat.astrbot.api.event import MessageChain

    return MessageChain().message(text)


def _any_event(_: Any) -> str:
    return "message"


class _FilterKind:
    """The routing of one SessionFilter class name: the filter instances keying live
    sessions, each with how many sessions it keys. Instances of one class with equal
    (hashable) attributes count as one: one call routes for all of them. An instance leaves
    when its last session ends, so filters whose attributes differ per call (one per room)
    cost nothing once their rooms are over."""

    __slots__ = ("engine", "live", "name", "warned")

    def __init__(self, name: str, engine: Engine) -> None:
        self.name = name
        self.engine = engine
        self.live: dict[Hashable, list[Any]] = {}  # ident -> [instance, sessions]
        self.warned = False

    def hold(self, session_filter: Any) -> Hashable:
        ident = _filter_ident(session_filter)
        entry = self.live.get(ident)
        if entry is None:
            self.live[ident] = [session_filter, 1]
            if len(self.live) == _MANY_LIVE and not self.warned:
                self.warned = True
                logger.warning(
                    "%d live instances of session filter %s: every message is keyed once per "
                    "instance (its attributes or class differ per call); derive the key from "
                    "the event instead", _MANY_LIVE, self.name)
        else:
            entry[1] += 1
        return ident

    def release(self, ident: Hashable) -> None:
        entry = self.live.get(ident)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.live[ident]

    def route(self, view: EventView) -> str | None:
        live = self.live
        if not live:
            return None
        event = view.origin
        only = len(live) == 1
        for session_filter, _ in tuple(live.values()):
            try:
                raw = session_filter.filter(event)
            except Exception:
                # One plugin's broken filter must not break every message of the bot.
                logger.exception("session filter %s failed on %r; event not routed by it",
                                 self.name, view)
                continue
            if isinstance(raw, str) and raw:
                key = f"{self.name}|{raw}"
                if only or key in self.engine:
                    return key
        return None


def _filter_ident(session_filter: Any) -> Hashable:
    """Instances that key alike: the same class with equal hashable attributes; any other
    instance (unhashable or slotted attributes) stands for itself."""
    cls = type(session_filter)
    attrs_ = getattr(session_filter, "__dict__", None)
    if attrs_ is None:
        return (cls, id(session_filter))
    try:
        ident = (cls, frozenset(attrs_.items()))
        hash(ident)
    except TypeError:
        return (cls, id(session_filter))
    return ident


def _view_filter_fn(kind: str, fn: Callable[[EventView], str]) -> Callable[[Any], str | None]:
    def key(view: EventView) -> str | None:
        return f"{kind}|{fn(view)}"

    return key


_default: Runtime | None = None
_default_options: dict[str, Any] = {}


def default_runtime() -> Runtime:
    """The process-wide runtime (real time) used for events no host bound to a runtime."""
    global _default
    if _default is None:
        _default = Runtime(**_default_options)
    return _default


def set_default_options(**options: Any) -> None:
    """Options of the process-wide runtime (`default_key`, `mirror`), now and when it
    is rebuilt."""
    if "default_key" in options and options["default_key"] not in DEFAULT_KEYS:
        raise ValueError(f"default_key must be one of {DEFAULT_KEYS}, "
                         f"got {options['default_key']!r}")
    unknown = set(options) - {"default_key", "mirror"}
    if unknown:
        raise TypeError(f"unknown runtime options {sorted(unknown)}")
    _default_options.update(options)
    if _default is not None:
        for name, value in options.items():
            setattr(_default, name, value)


def set_default_runtime(runtime: Runtime | None) -> None:
    """Replace the process-wide runtime (None: a fresh one on next use)."""
    global _default
    _default = runtime


def runtime_for(event: Any) -> Runtime:
    """The runtime an event belongs to: the host's that built it, else the current one."""
    runtime = getattr(event, "_convo_fsm_runtime", None)
    return runtime if isinstance(runtime, Runtime) else current_runtime()


def current_runtime() -> Runtime:
    """The runtime of the running code's `PluginHost`, else the process-wide one."""
    host = current_host()
    runtime = getattr(host, "runtime", None)
    return runtime if isinstance(runtime, Runtime) else default_runtime()
