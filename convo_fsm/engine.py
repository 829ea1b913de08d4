"""The engine: how an event flows, from the host's hand to a session's actions.

1. `dispatch(event)` computes one key per registered filter kind (per sender,
   per group, ...) and looks each up in one dict of live sessions: the cost does
   not depend on how many sessions live. No session wants it -> `False`, and the
   host gives the event to its ordinary handlers.
2. `deliver(key, event)` takes the key's *turn*: one event at a time per key.
   A busy key parks later events in an inbox that exists only while the key is
   busy (queue, drop with a reply, or interrupt: the spec's `busy` policy).
3. The spec classifies the event into a name; the compiled table gives the
   candidate transitions; guards (sync or async) pick the first that passes.
   No candidate -> `False` (handed back, never swallowed).
4. The pure `step` returns the new session and effects; the engine commits the
   session, arms its timers in the one heap, runs the actions in order and
   ends the session when told. An exception in a guard or action ends only that
   session (reason "error"), reported to `on_error` and the log.
5. Timers: one heap of (deadline, key, generation, is_warning) for all
   sessions. A change of state bumps the generation, so older entries are
   skipped when popped (and compacted away when they pile up). The clock calls
   `fire_due(now)`; a timeout that falls due while the key's action is running
   cancels that action first, then takes the turn.
6. When a session ends, events waiting in its inbox are handed back (their
   `dispatch` returns False), its running action is cancelled, and nothing of
   it stays: no turn, no timer that could fire, no end waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs

from convo_fsm.clock import AsyncioClock, Clock
from convo_fsm.context import Context, Reply
from convo_fsm.message import DEFAULT_FILTERS, Filter
from convo_fsm.session import Session
from convo_fsm.spec import Action, Busy, EventError, Spec
from convo_fsm.step import (
    Arm,
    End,
    Force,
    GuardFailed,
    Input,
    Result,
    Run,
    TimerFired,
    achoose,
    new_session,
    step,
)
from convo_fsm.storage.base import Conflict, Policy, Store, fingerprint

__all__ = ["Ended", "Engine", "LimitError", "SessionExists", "SessionInfo", "TraceRecord"]

logger = logging.getLogger("convo_fsm")


class SessionExists(RuntimeError):
    """`start` on a key that already has a live session (and `replace` was not asked)."""

    def __init__(self, key: str, spec: str, state: str) -> None:
        super().__init__(f"key {key!r} already has a live {spec!r} session (in state {state!r}); "
                         "stop it first or start with replace=True")
        self.key = key


class LimitError(RuntimeError):
    """A configured limit (live sessions) would be exceeded."""


@attrs.frozen
class Ended:
    """How a session ended: `reason` is final, stop, timeout, stopped, error, replaced or closed."""

    session: Session
    reason: str
    error: BaseException | None = None


@attrs.frozen
class TraceRecord:
    """One thing the engine did, for an optional `trace` hook (transcripts, test invariants).

    `kind` is one of:
    - "event": `event` arrived for `key` (`deliver`, also via `dispatch`);
    - "result": that event was consumed (`consumed` True) or handed back (False);
    - "step": a change committed: `name` is the event name, "start", "timeout" or "warning",
      `source` the state left, `session` the new session, `event` the raw event. A start is
      the step with `source` None; a timer's step has `event` None (a user's event may be
      named "start" or "timeout" too);
    - "force" / "deadline": `Engine.force` / `Engine.set_deadline` committed `session`;
    - "stop": the host called `Engine.stop` (`reason`);
    - "reply": a reply with `text` to `key` (caused by `event`);
    - "end": `session` ended with `reason`.
    `at` is the clock time.
    """

    kind: str
    key: str
    at: float
    session: Session | None = None
    event: Any = None
    name: str | None = None
    source: str | None = None
    text: str | None = None
    reason: str | None = None
    consumed: bool | None = None


@attrs.frozen
class SessionInfo:
    key: str
    spec: str
    state: str
    seconds_left: float | None
    data: dict[str, Any] = attrs.field(eq=False)


class _Turn:
    """A busy key: the waiting events and the task running an action, if any."""

    __slots__ = ("cancel_requested", "cancelling", "inbox", "late", "task")

    def __init__(self) -> None:
        # (future, wants_session): events want their session; start/timers only want the turn.
        self.inbox: deque[tuple[asyncio.Future[bool], bool]] = deque()
        self.task: asyncio.Task[Any] | None = None
        self.cancel_requested = False
        self.cancelling = 0
        self.late: asyncio.Future[bool] | None = None  # a warning waiting for this turn


_COMPACT_SLACK = 1024


def _filter_error(kind: str, event: Any, exc: Exception) -> EventError:
    return EventError(f"filter {kind!r} cannot key {type(event).__name__} event {event!r}: {exc}")


def _is_current(session: Session | None, due: float, gen: int, warning: bool) -> bool:
    """Whether a heap entry (due, key, gen, warning) is the live timer of `session` (the one
    on its key). The time must match too: a new session on a key counts generations from 0
    again, so an old session's entry can carry the new one's generation."""
    return (session is not None and session.generation == gen
            and due == (session.warn_at if warning else session.deadline))


class Engine:
    """Runs sessions of any number of specs.

    `filters` maps a filter kind to a function event -> key (or None); they are
    tried in order by `dispatch`. `send` receives every `Reply` (default: kept
    in `outbox`, the last 10,000). `on_end(Ended)` and `on_error(key, exc)` are
    optional hooks. `clock` defaults to the running asyncio loop's clock. `trace`, if given,
    is called with a `TraceRecord` for everything the engine does (see `convo_fsm.testing`).
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
        trace: Callable[[TraceRecord], object] | None = None,
        store: Store | None = None,
    ) -> None:
        self.clock: Clock = AsyncioClock() if clock is None else clock
        self._filters = tuple((DEFAULT_FILTERS if filters is None else filters).items())
        self.outbox: deque[Reply] = deque(maxlen=10_000)
        self._send = self.outbox.append if send is None else send
        self._on_end = on_end
        self._on_error = on_error
        self.max_sessions = max_sessions
        self._trace = trace
        self._sessions: dict[str, Session] = {}
        self._specs: dict[str, Spec] = {}
        self._busy: dict[str, _Turn] = {}
        self._heap: list[tuple[float, str, int, bool]] = []
        self._end_waiters: dict[str, list[asyncio.Future[Ended]]] = {}
        self._sending: set[asyncio.Future[Any]] = set()
        # With a store (convo_fsm.storage): the store's revision of each key we wrote or read,
        # for compare-and-set, and writes started outside a turn (stop, force, set_deadline).
        self._store = store
        self._revs: dict[str, int] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._store_lock = asyncio.Lock()
        self._closing = False
        self.clock.attach(self)

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End every session (reason "closed"), cancel running actions and pending sends.
        With a store, sessions stay stored (a later `restore` brings them back)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        self._closing = True
        for key in list(self._sessions):
            self.stop(key, "closed")
        self.clock.detach(self)
        for fut in list(self._sending):
            fut.cancel()
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await asyncio.sleep(0)

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
        ends with reason "replaced").
        """
        if not isinstance(spec, Spec):
            raise TypeError(f"start() needs a Spec, got {type(spec).__name__}")
        if not isinstance(key, str) or not key:
            raise TypeError(f"a session key must be a non-empty str, got {key!r}")
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, got {type(data).__name__}")
        own = dict(data or {})  # the session's own dict: its identity marks this session's life
        try:
            json.dumps(own)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"session data must be JSON-serialisable: {exc}") from exc
        known = self._specs.setdefault(spec.name, spec)
        if known is not spec:
            raise ValueError(f"another spec named {spec.name!r} is already registered")
        turn = self._busy.get(key)
        reentrant = turn is not None and turn.task is asyncio.current_task()
        held: _Turn | None = None
        if not reentrant:
            self._check_start(key, spec, replace)
            if replace:  # end it now: its running action is cancelled, so the turn comes free
                self.stop(key, "replaced")
            held = await self._take_turn(key, wants_session=False)
            assert held is not None
        try:
            self._check_start(key, spec, replace)
            old = self._sessions.get(key)
            if old is not None:
                self._end(key, old.data, "replaced")
            result = new_session(spec, key, self.clock.now(), own)
            ctx = Context(result.session, event, "start", self.clock.now(), self._emit)
            await self._apply(key, result, ctx, held or turn)
            if self._store is not None:
                await self._persist(key)
        finally:
            if held is not None:
                self._release(key, held)
        return result.session

    def _check_start(self, key: str, spec: Spec, replace: bool) -> None:
        old = self._sessions.get(key)
        if old is not None and not replace:
            raise SessionExists(key, old.spec, old.state)
        if old is None and len(self._sessions) >= self.max_sessions:
            raise LimitError(f"cannot start {spec.name!r} for {key!r}: "
                             f"{self.max_sessions} live sessions is the limit")

    async def dispatch(self, event: Any) -> bool:
        """Give `event` to the session its key names. False: no session consumed it."""
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
                if await self.deliver(key, event):
                    return True
                tried = key
        return False

    async def deliver(self, key: str, event: Any) -> bool:
        """Give `event` to the session on `key` directly (no filters)."""
        if self._trace is not None:
            self._trace(TraceRecord("event", key, self.clock.now(), event=event))
        session = self._sessions.get(key)
        if session is None:
            return self._result(key, event, False)
        turn = self._busy.get(key)
        if turn is not None:
            if turn.task is asyncio.current_task():
                raise RuntimeError(f"an action of {key!r} cannot deliver to its own key: "
                                   "it would wait for itself")
            spec = self._specs[session.spec]
            if spec.busy is Busy.DROP:
                self._emit(Reply(key, spec.busy_reply, event))
                return self._result(key, event, True)
            if len(turn.inbox) >= spec.queue_limit:
                logger.warning("inbox of %r is full (%d): event handed back", key, spec.queue_limit)
                return self._result(key, event, False)
            if spec.busy is Busy.INTERRUPT:
                self._interrupt(turn)
            held = await self._take_turn(key, wants_session=True)
            if held is None:
                return self._result(key, event, False)
        else:
            held = self._busy[key] = _Turn()  # (what _take_turn does for a free key)
        try:
            consumed = await self._handle(key, event, held)
            if consumed and self._store is not None:
                await self._persist(key)
        finally:
            self._release(key, held)
        return consumed if self._trace is None else self._result(key, event, consumed)

    def _result(self, key: str, event: Any, consumed: bool) -> bool:
        if self._trace is not None:
            self._trace(TraceRecord("result", key, self.clock.now(), event=event,
                                    consumed=consumed))
        return consumed

    async def _handle(self, key: str, event: Any, turn: _Turn) -> bool:
        session = self._sessions.get(key)
        if session is None:
            return False
        spec = self._specs[session.spec]
        try:
            name = spec.classify(event)
        except EventError:
            raise
        except Exception as exc:
            raise EventError(f"spec {spec.name!r} cannot classify {type(event).__name__} event "
                             f"{event!r}: {exc}") from exc
        candidates = spec.lookup(session.state, name)
        if not candidates:
            return False
        now = self.clock.now()
        ctx = Context(session, event, name, now, self._emit)
        t = candidates[0]
        if t.guard is not None:
            try:
                chosen = await achoose(candidates, ctx)
            except GuardFailed as failed:
                self._fail(key, session.data, failed.error, f"guard {failed.on.guard_name}")
                return True
            if chosen is None:
                return False
            t = chosen
            if self._sessions.get(key) is not session:  # an async guard let time pass
                return await self._handle(key, event, turn)
        # (what _apply does, inline: this is the per-event path)
        result = step(spec, session, Input(name, event, t), now)
        new = ctx.session = result.session
        self._commit(key, new, event, name, session.state, now)
        await self._effects(key, new, result.effects, ctx, turn, False)
        return True

    # -- applying a step -------------------------------------------------------------------
    async def _apply(self, key: str, result: Result, ctx: Context, turn: _Turn | None,
                     detach: bool = False) -> bool:
        """Commit the step's session and perform its effects in order. With `detach` (timers),
        the first async action and the effects after it go on in a task that holds the turn and
        releases it: True then, and the caller must not release the turn. So a slow timer
        action never holds up the other sessions' timers."""
        session = ctx.session = result.session
        old = self._sessions.get(key)
        self._commit(key, session, ctx.event, ctx.name, None if old is None else old.state,
                     self.clock.now())
        return await self._effects(key, session, result.effects, ctx, turn, detach)

    def _commit(self, key: str, session: Session, event: Any, name: str, source: str | None,
                now: float) -> None:
        """Make `session` the key's session (a step's result), and trace it."""
        if self._trace is not None:
            self._trace(TraceRecord("step", key, now, session, event, name, source))
        self._sessions[key] = session

    async def _effects(self, key: str, session: Session, effects: tuple[Any, ...], ctx: Context,
                       turn: _Turn | None, detach: bool) -> bool:
        token = session.data
        for index, effect in enumerate(effects):
            if type(effect) is Run:
                current = self._sessions.get(key)
                if current is None or current.data is not token:
                    return False  # ended (or replaced) by a timer, stop() or an earlier action
                ctx.session = current
                try:
                    pending = effect.action(ctx)
                    if inspect.isawaitable(pending):
                        if detach and turn is not None:
                            self._detach(key, session, pending, effects[index + 1:], ctx, turn,
                                         effect.action)
                            return True
                        await self._await_cancellable(pending, turn)
                except asyncio.CancelledError:  # the caller was cancelled
                    self._bookkeep(key, session, effects[index + 1:])
                    raise
                except _Interrupted:
                    self._bookkeep(key, session, effects[index + 1:])
                    return False
                except Exception as exc:
                    self._fail(key, token, exc, f"action {_name(effect.action)}")
                    return False
            elif type(effect) is Arm:
                self._arm(key, session)
            else:
                self._end(key, token, effect.reason)
        return False

    def _bookkeep(self, key: str, session: Session, effects: tuple[Any, ...]) -> None:
        """After an action was interrupted or its caller cancelled: the step stays committed,
        so a step into a final state still ends the session; its other actions do not run.
        (Arm always comes before the actions.) Nothing if the session has moved on since."""
        current = self._sessions.get(key)
        if current is None or current.data is not session.data or current.state != session.state:
            return
        for effect in effects:
            if type(effect) is End:
                self._end(key, session.data, effect.reason)
                return

    def _detach(self, key: str, session: Session, pending: Awaitable[Any],
                rest: tuple[Any, ...], ctx: Context, turn: _Turn, action: Action) -> None:
        async def finish() -> None:
            try:
                await self._await_cancellable(pending, turn)
            except _Interrupted:
                self._bookkeep(key, session, rest)
                return
            except Exception as exc:
                self._fail(key, session.data, exc, f"action {_name(action)}")
                return
            await self._effects(key, session, rest, ctx, turn, False)
            if self._store is not None:
                await self._persist(key)

        def done(task: asyncio.Future[Any]) -> None:
            self._sending.discard(task)
            if inspect.iscoroutine(pending) and task.cancelled():
                pending.close()  # cancelled (stop, close) before it ever ran
            if turn.task is task:
                turn.task = None
            turn.cancel_requested = False
            self._release(key, turn)

        task = asyncio.ensure_future(finish())
        turn.task, turn.cancelling = task, 0  # interruptible from now on, like any action
        self._sending.add(task)  # cancelled by close() like a pending send
        task.add_done_callback(done)

    async def _await_cancellable(self, awaitable: Awaitable[Any], turn: _Turn | None) -> None:
        # Like asyncio.timeout: the engine cancels the current task and takes the
        # cancellation back with uncancel(), so no task is created per action.
        task = asyncio.current_task()
        if turn is None or task is None:
            await awaitable
            return
        turn.task, turn.cancelling = task, task.cancelling()
        try:
            await awaitable
        except asyncio.CancelledError:
            if turn.cancel_requested and task.uncancel() <= turn.cancelling:
                turn.cancel_requested = False
                raise _Interrupted from None
            raise
        finally:
            turn.task = None
            if turn.cancel_requested:  # the action swallowed our CancelledError
                turn.cancel_requested = False
                task.uncancel()

    def _interrupt(self, turn: _Turn) -> None:
        task = turn.task
        if task is not None and task is not asyncio.current_task() and not turn.cancel_requested:
            turn.cancel_requested = True
            task.cancel()

    # -- turns ---------------------------------------------------------------------------
    async def _take_turn(self, key: str, *, wants_session: bool, front: bool = False
                         ) -> _Turn | None:
        turn = self._busy.get(key)
        if turn is None:
            turn = self._busy[key] = _Turn()
            return turn
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if front:
            turn.inbox.appendleft((fut, wants_session))
        else:
            turn.inbox.append((fut, wants_session))
        try:
            granted = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self._release(key, turn)  # we were handed the turn as we were cancelled
            else:
                with contextlib.suppress(ValueError):  # free its place: inboxes are bounded
                    turn.inbox.remove((fut, wants_session))
            raise
        return turn if granted else None

    def _release(self, key: str, turn: _Turn) -> None:
        inbox = turn.inbox
        while inbox:
            fut, _ = inbox.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        if self._busy.get(key) is turn:
            del self._busy[key]

    # -- timers --------------------------------------------------------------------------
    def _arm(self, key: str, session: Session) -> None:
        heap = self._heap
        gen = session.generation
        if session.warn_at is not None:
            heapq.heappush(heap, (session.warn_at, key, gen, True))
        if session.deadline is not None:
            heapq.heappush(heap, (session.deadline, key, gen, False))
        if heap and heap[0][1] == key and heap[0][2] == gen:
            self.clock.wake(self, heap[0][0])
        if len(heap) > 4 * len(self._sessions) + _COMPACT_SLACK:
            self._compact()

    def _compact(self) -> None:
        sessions = self._sessions
        self._heap = [e for e in self._heap
                      if _is_current(sessions.get(e[1]), e[0], e[2], e[3])]
        heapq.heapify(self._heap)

    def next_deadline(self) -> float | None:
        """The earliest pending timer (outdated entries are dropped on the way)."""
        heap, sessions = self._heap, self._sessions
        while heap:
            due, key, gen, warning = heap[0]
            if _is_current(sessions.get(key), due, gen, warning):
                return due
            heapq.heappop(heap)
        return None

    async def fire_due(self, now: float) -> int:
        """Fire every timer due at `now`, in deadline order. Returns how many fired."""
        fired = 0
        while (due := self.next_deadline()) is not None and due <= now:
            due, key, gen, warning = heapq.heappop(self._heap)
            turn = self._busy.get(key) if warning else None
            if turn is not None:
                # A warning waits for the key's running action; awaited here, it would hold
                # up every other session's timers meanwhile. It waits in its own task, one
                # per key: a newer warning makes the waiting one obsolete.
                if turn.late is not None:
                    turn.late.cancel()
                late = turn.late = asyncio.ensure_future(self._fire(key, gen, warning, due))
                self._sending.add(late)  # cancelled by close() like a pending send
                late.add_done_callback(self._sending.discard)
                continue
            done = (self._fire_at_once(key, warning)
                    if self._store is None and key not in self._busy else None)
            if done is None:
                done = await self._fire(key, gen, warning, due)
            fired += done
        return fired

    def _fire_at_once(self, key: str, warning: bool) -> bool | None:
        """A due timer (checked by next_deadline) on a free key whose step runs no action,
        applied with no turn and no await: most timeouts (to STOP, or a move without
        actions), so N falling due at once cost N steps. None: it needs `_fire`."""
        session = self._sessions[key]
        now = self.clock.now()
        result = self._timer_step(session, warning, now)
        if result is None:
            return False
        effects = result.effects
        for effect in effects:
            if type(effect) is Run:
                return None
        new = result.session
        self._commit(key, new, None, "warning" if warning else "timeout", session.state, now)
        for effect in effects:
            if isinstance(effect, End):
                self._end(key, new.data, effect.reason)
            else:
                self._arm(key, new)
        return True

    def _timer_step(self, session: Session, warning: bool, now: float) -> Result | None:
        """The step of a due timer; None for a warning that came late, at or after its
        session's deadline (it must not come after, or start an action ahead of, the
        timeout)."""
        if warning and session.deadline is not None and session.deadline <= now:
            return None
        return step(self._specs[session.spec], session, TimerFired(warning), now)

    async def _fire(self, key: str, gen: int, warning: bool, due: float) -> bool:
        turn = self._busy.get(key)
        if turn is not None and not warning:
            self._interrupt(turn)  # a timeout does not wait for a running action
        held = await self._take_turn(key, wants_session=True, front=True)
        if held is None:
            return False
        detached = False  # True: a task finishes the timer's actions and releases the turn
        try:
            session = self._sessions.get(key)
            if session is None or not _is_current(session, due, gen, warning):
                return False  # ended, moved on, or another session's timer
            now = self.clock.now()
            result = self._timer_step(session, warning, now)
            if result is None:
                return False
            ctx = Context(session, None, "warning" if warning else "timeout", now, self._emit)
            detached = await self._apply(key, result, ctx, held, detach=True)
            if self._store is not None:
                await self._persist(key)
            return True
        finally:
            if not detached:
                self._release(key, held)

    # -- ending ----------------------------------------------------------------------------
    def _end(self, key: str, token: dict[str, Any], reason: str,
             error: BaseException | None = None) -> bool:
        session = self._sessions.get(key)
        if session is None or session.data is not token:
            return False  # already over, or a newer session lives on this key: leave it alone
        del self._sessions[key]
        if self._trace is not None:
            self._trace(TraceRecord("end", key, self.clock.now(), session, reason=reason))
        turn = self._busy.get(key)
        if turn is not None:
            kept: deque[tuple[asyncio.Future[bool], bool]] = deque()
            for fut, wants_session in turn.inbox:
                if not wants_session:
                    kept.append((fut, wants_session))
                elif not fut.done():
                    fut.set_result(False)  # handed back to the host, never swallowed
            turn.inbox = kept
            self._interrupt(turn)
        ended = Ended(session, reason, error)
        for waiter in self._end_waiters.pop(key, ()):
            if not waiter.done():
                waiter.set_result(ended)
        if self._on_end is not None:
            try:
                self._on_end(ended)
            except Exception:
                logger.exception("on_end hook failed for %r", key)
        return True

    def _fail(self, key: str, token: dict[str, Any], exc: BaseException, where: str) -> None:
        logger.error("session %r: %s raised %r; session ended", key, where, exc, exc_info=exc)
        if self._on_error is not None:
            try:
                self._on_error(key, exc)
            except Exception:
                logger.exception("on_error hook failed for %r", key)
        self._end(key, token, "error", exc)

    def stop(self, key: str, reason: str = "stopped") -> bool:
        """End the session on `key` now. Its running action is cancelled; its queued events
        are handed back. False if there was none."""
        session = self._sessions.get(key)
        if session is not None and self._trace is not None:
            self._trace(TraceRecord("stop", key, self.clock.now(), session, reason=reason))
        if session is None or not self._end(key, session.data, reason):
            return False
        if self._store is not None:
            self._persist_soon(key)
        return True

    def wait_ended(self, key: str) -> asyncio.Future[Ended]:
        """A future resolved with `Ended` when the session now on `key` ends."""
        if key not in self._sessions:
            raise KeyError(f"no live session on {key!r}")
        fut: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()
        self._end_waiters.setdefault(key, []).append(fut)
        return fut

    # -- introspection and admin ------------------------------------------------------------
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
        return tuple(self._busy)

    def pending_timers(self) -> int:
        """Heap entries still valid for a live session (outdated ones excluded)."""
        sessions = self._sessions
        return len({(k, w) for d, k, g, w in self._heap  # (a restarted key may hold a twin)
                    if _is_current(sessions.get(k), d, g, w)})

    def footprint(self) -> dict[str, Any]:
        """Sizes of the engine's bookkeeping (tests, monitoring): live `sessions`, `busy` keys
        with their inbox lengths, timer `heap` entries (outdated ones included), keys `waiting`
        on `wait_ended`, and pending async `sending`s (and warnings waiting for a busy key)."""
        return {"sessions": len(self._sessions),
                "busy": {k: len(t.inbox) for k, t in self._busy.items()},
                "heap": len(self._heap), "waiting": tuple(self._end_waiters),
                "sending": len(self._sending)}

    def force(self, key: str, state: str) -> Session:
        """Put the session on `key` into `state` (no actions run; timers re-armed)."""
        session = self._require(key)
        spec = self._specs[session.spec]
        if state not in spec.by_name:
            raise ValueError(f"spec {spec.name!r} has no state {state!r}")
        result = step(spec, session, Force(state), self.clock.now())
        if self._trace is not None:
            self._trace(TraceRecord("force", key, self.clock.now(), result.session,
                                    source=session.state))
        self._sessions[key] = result.session
        self._arm(key, result.session)
        if spec.by_name[state].final:
            self._end(key, session.data, "final")
        if self._store is not None:
            self._persist_soon(key)
        return result.session

    def set_deadline(self, key: str, deadline: float | None) -> Session:
        """Replace the session's timeout deadline (absolute, clock time); None disarms it.
        The state's warning is dropped. Used by `keep()` in the AstrBot layer."""
        session = self._require(key)
        new = session._replace(deadline=deadline, warn_at=None,
                               generation=session.generation + 1, updated=self.clock.now())
        if self._trace is not None:
            self._trace(TraceRecord("deadline", key, self.clock.now(), new, source=session.state))
        self._sessions[key] = new
        self._arm(key, new)
        if self._store is not None:
            self._persist_soon(key)
        return new

    # -- persistence (only with a store) ---------------------------------------------------
    async def _persist(self, key: str) -> None:
        """Commit what we now hold for `key`: the live session, or its absence. A store error
        is logged and never ends a session; a compare-and-set conflict means someone else
        (`convo-fsm sessions --stop/--force`) changed the record, and theirs wins."""
        store = self._store
        assert store is not None
        async with self._store_lock:
            if self._closing:
                return  # closing ends sessions in memory only: they stay stored
            session = self._sessions.get(key)
            rev = self._revs.get(key)
            try:
                if session is not None:
                    spec = self._specs[session.spec]
                    self._revs[key] = await store.save(session, fingerprint(spec), rev)
                elif rev is not None:
                    del self._revs[key]
                    await store.delete(key, rev)
                return
            except Conflict as exc:
                logger.warning("session %r: %s; taking the stored version", key, exc)
            except Exception:
                logger.exception("store %r failed to commit session %r", store, key)
                return
        await self._reload(key)

    def _persist_soon(self, key: str) -> None:
        task = asyncio.get_running_loop().create_task(self._persist(key))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _reload(self, key: str) -> None:
        """Replace what we hold for `key` by the stored record (after a conflict)."""
        assert self._store is not None
        try:
            stored = await self._store.load(key)
        except Exception:
            logger.exception("store %r failed to load session %r", self._store, key)
            return
        live = self._sessions.get(key)
        if live is not None:
            self._end(key, live.data, "stopped")
        self._revs.pop(key, None)
        if stored is not None and stored.session.spec in self._specs:
            self._adopt(stored.session, stored.rev)

    def _adopt(self, session: Session, rev: int) -> None:
        self._sessions[session.key] = session
        self._revs[session.key] = rev
        self._arm(session.key, session)

    async def restore(self, specs: Iterable[Spec],
                      policies: Mapping[str, Policy] | None = None) -> list[Session]:
        """Bring back the store's sessions of `specs` after a restart, then fire at once, in
        deadline order, the timeouts that fell due while we were down. A stored state a spec
        no longer has, or a timeout too old, is handled by that spec's `Policy`
        (convo_fsm.storage). Sessions of other specs stay stored, untouched. Returns the
        sessions made live (before their due timeouts fired)."""
        from convo_fsm.storage.restore import decide

        store = self._store
        if store is None:
            raise RuntimeError("restore() needs an engine with a store: Engine(store=...)")
        mine: dict[str, Spec] = {}
        for spec in specs:
            if not isinstance(spec, Spec):
                raise TypeError(f"restore() needs Specs, got {type(spec).__name__}")
            if self._specs.setdefault(spec.name, spec) is not spec:
                raise ValueError(f"another spec named {spec.name!r} is already registered")
            mine[spec.name] = spec
        now = self.clock.now()
        live: list[Session] = []
        resets: list[tuple[Spec, Session]] = []
        for stored in await store.list():
            owner = mine.get(stored.session.spec)
            key = stored.session.key
            if owner is None or key in self._sessions:
                continue
            decision = decide(owner, stored, policies.get(owner.name, Policy())
                              if policies is not None else Policy(), now)
            if decision.why:
                logger.info("restoring session %r: %s: %s", key, decision.why, decision.kind)
            if decision.kind in ("keep", "moved"):
                self._adopt(decision.session, stored.rev)
                live.append(decision.session)
                if decision.kind == "moved":
                    await self._persist(key)
                continue
            try:
                await store.delete(key, stored.rev)
            except Exception:
                logger.exception("store %r failed to drop session %r", store, key)
                continue
            if decision.message is not None:
                self._emit(Reply(key, decision.message))
            if decision.kind == "reset":
                resets.append((owner, decision.session))
        for spec, old in resets:
            live.append(await self.start(spec, old.key, data=old.data))
        await self.fire_due(now)
        return live

    def _require(self, key: str) -> Session:
        session = self._sessions.get(key)
        if session is None:
            raise KeyError(f"no live session on {key!r}")
        return session

    def _emit(self, reply: Reply) -> None:
        if self._trace is not None:
            self._trace(TraceRecord("reply", reply.to, self.clock.now(), event=reply.event,
                                    text=reply.text))
        result = self._send(reply)
        if inspect.isawaitable(result):
            fut = asyncio.ensure_future(result)
            self._sending.add(fut)
            fut.add_done_callback(self._sending.discard)


class _Interrupted(Exception):
    """The running action was cancelled by the engine (timeout, stop, interrupt)."""


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
