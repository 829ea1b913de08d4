"""The engine: how an event flows, from the host's hand to a session's actions.

1. `dispatch(event)` computes one key per registered filter kind (per member, per
   group, ...) and looks each up in one dict of live sessions: the cost does not
   depend on how many sessions live. No session wants it -> `False`, and the host
   gives the event to its ordinary handlers.
2. `deliver(key, event)` (`delivery.py`) takes the key's turn (`turns.py`): one event
   at a time per key. A busy key parks later events in an inbox that exists only while it is busy
   (queue, drop with a reply, or interrupt: the spec's `busy` policy). A full inbox
   hands the event back: `dispatch` returns False and tries no other kind.
3. The spec classifies the event into a name; its compiled table gives the
   candidate transitions; guards (sync, or async and interruptible) pick the first
   that passes. No candidate -> `False` (handed back, never swallowed).
4. The pure `step` returns the new session and effects; the engine commits the
   session (tracing it, `tracing.py`) and the effect interpreter (`effects.py`) arms
   its timers, runs its actions in order and ends it when told (what the parts call
   on the engine, committing and ending included, is `host.py`). An exception
   in a guard or action ends only that session (reason "error"), reported to
   `on_error` and the log. With a store, the step is then committed there
   (`convo_fsm.storage.binding`) before the event is reported consumed.
5. Timers (`timers.py`, `firing.py`): one heap for all sessions. The clock calls `fire_due(now)`,
   which never waits: a timer on a free key is stepped at once; on a busy key it
   cuts the running guard or action short and takes the turn in a task of its own,
   as does a timer action that must be awaited. Mass expiry yields to the loop
   between slices.
6. When a session ends, events waiting in its inbox are handed back (their
   `dispatch` returns False), its running work is cut short, and nothing of it
   stays: no turn, no timer that could fire, no end waiter. Background work runs
   under one supervisor (`supervisor.py`) that reports every failure and that
   `close()` empties.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from convo_fsm.clock import AsyncioClock, Clock
from convo_fsm.context import Context, Reply
from convo_fsm.message import DEFAULT_FILTERS, Filter
from convo_fsm.session import Session, check_data
from convo_fsm.spec import EventError, Spec
from convo_fsm.step import (
    Force,
    Policy,
    SetDeadline,
    new_session,
    step,
)

from .delivery import Delivery
from .effects import finish, run
from .firing import Firing
from .host import Ended, EngineHost
from .supervisor import Supervisor
from .timers import Timers
from .tracing import HookTracer, Tracer, TraceRecord
from .turns import Turn, Turns, current_task

if TYPE_CHECKING:
    from convo_fsm.storage.base import Store
    from convo_fsm.storage.binding import StoreBinding

__all__ = ["Ended", "Engine", "EngineClosed", "LimitError", "SessionExists", "SessionInfo",
           "TraceRecord"]

logger = logging.getLogger("convo_fsm")



class SessionExists(RuntimeError):
    """`start` on a key that already has a live session (and `replace` was not asked)."""

    def __init__(self, key: str, spec: str, state: str) -> None:
        super().__init__(f"key {key!r} already has a live {spec!r} session (in state {state!r}); "
                         "stop it first or start with replace=True")
        self.key = key


class LimitError(RuntimeError):
    """A configured limit (live sessions) would be exceeded."""


class EngineClosed(RuntimeError):
    """`start`, `dispatch` or `deliver` on an engine that was closed."""


@attrs.frozen
class SessionInfo:
    key: str
    spec: str
    state: str
    seconds_left: float | None
    data: dict[str, Any] = attrs.field(eq=False)


def _filter_error(kind: str, event: Any, exc: Exception) -> EventError:
    return EventError(f"filter {kind!r} cannot key {type(event).__name__} event {event!r}: {exc}")


class Engine(EngineHost):
    """Runs sessions of any number of specs.

    `filters` maps a filter kind to a function event -> key (or None); they are
    tried in order by `dispatch`. `send` receives every `Reply` (default: kept
    in `outbox`, the last 10,000); an async `send` runs supervised. `on_end(Ended)` and
    `on_error(key, exc)` are optional hooks (`on_error` also hears of failed sends and
    store writes). `clock` defaults to the running asyncio loop's clock. `trace`, if given,
    is called with a `TraceRecord` for everything the engine does (see `convo_fsm.testing`),
    or, if it is a `convo_fsm.engine.tracing.Tracer`, gets its method calls directly.
    `store` (convo_fsm.storage) keeps sessions across restarts.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        filters: Mapping[str, Filter] | None = None,
        send: Callable[[Reply], object] | None = None,
        on_end: Callable[[Ended], object] | None = None,
        on_error: Callable[[str, BaseException], object] | None = None,
        max_sessions: int = 2_000_000,
        trace: Callable[[TraceRecord], object] | Tracer | None = None,
        store: Store | None = None,
    ) -> None:
        self.clock: Clock = AsyncioClock() if clock is None else clock
        self._filters = tuple((DEFAULT_FILTERS if filters is None else filters).items())
        self.outbox: deque[Reply] = deque(maxlen=10_000)
        self._send = self.outbox.append if send is None else send
        self._on_end = on_end
        self._on_error = on_error
        self.max_sessions = max_sessions
        self._trace: Tracer = (Tracer() if trace is None else trace if isinstance(trace, Tracer)
                               else HookTracer(trace, self.clock.now))
        self._sessions: dict[str, Session] = {}
        self._specs: dict[str, Spec] = {}
        self._turns = Turns()
        self._timers = Timers(self._sessions, self.clock, self)
        self.current: Callable[[str], Session | None] = self._sessions.get
        self.arm: Callable[[str, Session], None] = self._timers.arm
        self._end_waiters: dict[str, list[asyncio.Future[Ended]]] = {}
        self._tasks = Supervisor(self.report)
        self._firing = Firing(self)
        # Session ids: unique per start (a random base, so ids restored from a store
        # do not meet this engine's).
        self._ids = itertools.count(random.getrandbits(52) + 1)
        self._closed = False
        self._store: StoreBinding | None = None
        if store is not None:
            from convo_fsm.storage.binding import StoreBinding  # storage only when asked

            self._store = StoreBinding(store, self)
        self._delivery = Delivery(self)
        self.clock.attach(self)

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End every session (reason "closed"), cancel running actions and pending sends
        and wait for them. With a store, sessions stay stored (`restore` brings them back).
        `start`, `dispatch` and `deliver` raise `EngineClosed` afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._store is not None:
            await self._tasks.join("store write")  # writes already started finish first
            self._store.release()
        for key in list(self._sessions):
            self.stop(key, "closed")
        self.clock.detach(self)
        await self._tasks.close()
        await asyncio.sleep(0)

    def _check_open(self) -> None:
        if self._closed:
            raise EngineClosed("this engine was closed: make a new Engine")

    # -- starting and routing ------------------------------------------------------------
    def key(self, kind: str, event: Any) -> str:
        """The key filter `kind` gives `event` (for starting a session keyed like dispatch)."""
        for name, fn in self._filters:
            if name == kind:
                try:
                    key = fn(event)
                except Exception as exc:
                    raise _filter_error(name, event, exc) from exc
                if key is None:
                    raise EventError(f"filter {kind!r} gives no key for {event!r}")
                return key
        raise KeyError(f"no filter kind {kind!r}; registered: {[n for n, _ in self._filters]}")

    def add_filter(self, kind: str, fn: Filter) -> None:
        """Register one more filter kind; `dispatch` tries it after the earlier ones.

        Kinds are registered once (a host adding a kind the first time it sees it),
        never per session. The same kind again with the same function is a no-op.
        """
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"a filter kind must be a non-empty str, got {kind!r}")
        if not callable(fn):
            raise TypeError(f"filter {kind!r} must be callable, got {fn!r}")
        for name, old in self._filters:
            if name == kind:
                if old is fn:
                    return
                raise ValueError(f"filter kind {kind!r} is already registered")
        self._filters = (*self._filters, (kind, fn))

    def register(self, spec: Spec) -> None:
        """Know `spec` by its name (start and restore do this); another spec of that name
        is a `ValueError`."""
        if self._specs.setdefault(spec.name, spec) is not spec:
            raise ValueError(f"another spec named {spec.name!r} is already registered")

    async def start(
        self,
        spec: Spec,
        key: str,
        *,
        data: Mapping[str, Any] | None = None,
        event: Any = None,
        replace: bool = False,
    ) -> Session:
        """Start `spec` for `key` and run the initial state's enter action (with `event`).

        A key with a live session: `SessionExists`, unless `replace` (the old one
        ends with reason "replaced"). `data` must survive JSON as it is (`DataError`).
        """
        self._check_open()
        if not isinstance(spec, Spec):
            raise TypeError(f"start() needs a Spec, got {type(spec).__name__}")
        if not isinstance(key, str) or not key:
            raise TypeError(f"a session key must be a non-empty str, got {key!r}")
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, got {type(data).__name__}")
        own = dict(data or {})
        check_data(own)
        self.register(spec)
        turn = self._turns.busy.get(key)
        reentrant = turn is not None and turn.task is current_task()
        held: Turn | None = None
        if not reentrant:
            self._check_start(key, spec, replace)
            if replace:  # end it now: its running action is cut short, so the turn comes free
                self.stop(key, "replaced")
            held = await self._turns.take(key, wants_session=False)
        try:
            self._check_open()  # closed while we waited for the turn
            self._check_start(key, spec, replace)
            old = self._sessions.get(key)
            if old is not None:
                self.end(key, old.id, "replaced")
            now = self.clock.now()
            result = new_session(spec, key, now, own, next(self._ids))
            session = result.session
            self._commit(key, session, event, "start", None, now)
            ctx = Context(session, event, "start", now, self.emit)
            pending = run(self, key, session, result.effects, ctx)
            if pending is not None:
                await finish(self, key, session, result.effects, ctx, held or turn, pending)
            if self._store is not None:
                await self._store.commit(key)
        finally:
            if held is not None:
                self._turns.release(key, held)
        return session

    def _check_start(self, key: str, spec: Spec, replace: bool) -> None:
        old = self._sessions.get(key)
        if old is not None and not replace:
            raise SessionExists(key, old.spec, old.state)
        if old is None and len(self._sessions) >= self.max_sessions:
            raise LimitError(f"cannot start {spec.name!r} for {key!r}: "
                             f"{self.max_sessions} live sessions is the limit")

    async def dispatch(self, event: Any) -> bool:
        """Give `event` to the session its key names. False: no session consumed it."""
        if self._closed:
            self._check_open()
        sessions = self._sessions
        if not sessions:
            return False
        tried = None
        for kind, fn in self._filters:
            try:
                key = fn(event)
            except Exception as exc:
                raise _filter_error(kind, event, exc) from exc
            if key is not None and key != tried and key in sessions:
                consumed = await self._delivery.apply(key, event)
                if consumed is not False:
                    return consumed is True  # None: that session's inbox is full
                tried = key
        return False

    async def deliver(self, key: str, event: Any) -> bool:
        """Give `event` to the session on `key` directly (no filters)."""
        self._check_open()
        return await self._delivery.apply(key, event) is True

    # -- ending ----------------------------------------------------------------------------
    def stop(self, key: str, reason: str = "stopped") -> bool:
        """End the session on `key` now. Its running work is cut short; its queued events
        are handed back. False if there was none."""
        session = self._sessions.get(key)
        if session is None:
            return False
        self._trace.stop(key, session, reason)
        if not self.end(key, session.id, reason):
            return False
        if self._store is not None and not self._closed:
            self._store.commit_soon(key)
        return True

    def wait_ended(self, key: str) -> asyncio.Future[Ended]:
        """A future resolved with `Ended` when the session now on `key` ends."""
        if key not in self._sessions:
            raise KeyError(f"no live session on {key!r}")
        fut: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()
        self._end_waiters.setdefault(key, []).append(fut)
        return fut

    # -- admin: changes from outside the table, through the step ----------------------------
    def force(self, key: str, state: str) -> Session:
        """Put the session on `key` into `state` (no actions run; timers re-armed)."""
        return self._change(key, Force(state), "force")

    def set_deadline(self, key: str, deadline: float | None) -> Session:
        """Replace the session's timeout deadline (absolute, clock time; finite); None
        disarms it. The state's warning is dropped. Used by `keep()` in the AstrBot layer."""
        return self._change(key, SetDeadline(deadline), "deadline")

    def _change(self, key: str, change: Force | SetDeadline, kind: str) -> Session:
        session = self._require(key)
        result = step(self._specs[session.spec], session, change, self.clock.now())
        self._trace.change(kind, key, result.session, session.state)
        self._sessions[key] = result.session
        run(self, key, result.session, result.effects, None)
        if self._store is not None:
            self._store.commit_soon(key)
        return result.session

    # -- introspection -----------------------------------------------------------------------
    def session(self, key: str) -> Session | None:
        return self._sessions.get(key)

    def spec(self, name: str) -> Spec:
        return self._specs[name]

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, key: object) -> bool:
        return key in self._sessions

    def sessions(self) -> list[SessionInfo]:
        now = self.clock.now()
        return [SessionInfo(s.key, s.spec, s.state, s.seconds_left(now), s.data)
                for s in self._sessions.values()]

    def busy_keys(self) -> Iterable[str]:
        """Keys whose turn is taken right now (for tests and introspection)."""
        return tuple(self._turns.busy)

    def pending_timers(self) -> int:
        """Heap entries still valid for a live session (outdated ones excluded)."""
        return self._timers.pending()

    def footprint(self) -> dict[str, Any]:
        """Sizes of the engine's bookkeeping (tests, monitoring): live `sessions`, `busy` keys
        with their inbox lengths, timer `heap` entries (outdated ones included), keys `waiting`
        on `wait_ended`, and supervised background `tasks` (sends, timers, writes)."""
        return {"sessions": len(self._sessions),
                "busy": {k: t.waiting() for k, t in self._turns.busy.items()},
                "heap": len(self._timers), "waiting": tuple(self._end_waiters),
                "tasks": len(self._tasks)}

    def _require(self, key: str) -> Session:
        session = self._sessions.get(key)
        if session is None:
            raise KeyError(f"no live session on {key!r}")
        return session

    # -- persistence (with a store: convo_fsm.storage.binding) ------------------------------
    async def restore(self, specs: Iterable[Spec],
                      policies: Mapping[str, Policy] | None = None) -> list[Session]:
        """Bring back the store's sessions of `specs` after a restart, then fire at once, in
        deadline order, the timeouts that fell due while we were down. What becomes of each
        stored session is `convo_fsm.step.restore`'s decision, by that spec's `Policy`.
        Sessions of other specs stay stored, untouched. Returns the sessions made live
        (before their due timeouts fired)."""
        if self._store is None:
            raise RuntimeError("restore() needs an engine with a store: Engine(store=...)")
        return await self._store.restore(specs, policies)


