"""Property-based testing for any conversation: a hypothesis state machine and random specs.

    from convo_fsm.testing.hypothesis import conversation_machine, specs

    TestQuiz = conversation_machine(quiz).TestCase          # one spec, random everything else
    TestEngine = conversation_machine(specs()).TestCase     # random specs too

The machine runs one `Engine` on a `VirtualClock` (and its own event loop) and applies random
rules: start sessions on random keys and filter kinds, send events from the spec's own
alphabet and garbage, advance time onto deadlines and warning points (and between them),
keep (move a deadline), stop, force a state, make the next action raise, hold actions open
(so events queue, interrupt or drop and timers cancel them), and cancel pending calls.

Every action, enter, exit, timeout action and warning of the spec is wrapped (the spec is
rebuilt with the wrappers, same table) to count what runs per key and to inject faults.
The engine's `trace` hook reports every arrival, step, timer, reply, result and ending.
After every rule the machine checks (see `Harness.check`):

- every live session is in a declared, non-final state of its spec; a session that ended
  leaves nothing behind: no turn (unless a start is waiting for it), no end waiter, no
  valid timer; memory-bounded structures stay within their caps (inboxes, the heap);
- at most one action runs per key at any moment; events for a key are handled in arrival
  order (no event steps or is consumed before an earlier one for the same key resolved);
- every event is delivered or handed back: a finished `dispatch` returned True and stepped
  once (or got the busy reply), or returned False and stepped nowhere; an unfinished one
  waits on a live, busy key; none is lost or delivered twice;
- no timer fires for an ended session or an outdated generation (each deadline once), a
  timeout fires exactly at its deadline (virtual clock), a warning never before its time,
  and after any rule no live session has a deadline or warning in the past;
- nothing raised but the faults the machine injected (or `EventError` for garbage).

`compat=True`-style checks for the AstrBot layer live in the tests that use its API.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from convo_fsm.clock import VirtualClock
from convo_fsm.context import Context
from convo_fsm.engine import Ended, Engine, SessionExists, TraceRecord
from convo_fsm.message import Message
from convo_fsm.session import Session
from convo_fsm.spec import (
    ANY,
    BACK,
    KEEP,
    STOP,
    Busy,
    Call,
    EventError,
    On,
    Spec,
    Start,
    StartArgs,
    StartError,
    State,
    Target,
    Timeout,
    When,
)

__all__ = ["FORM_TEXTS", "Harness", "InjectedFault", "conversation_machine", "forms", "specs"]

DataFactory = Callable[[Message], Mapping[str, Any]]


class InjectedFault(RuntimeError):
    """Raised by a wrapped action when the machine asked for a fault."""


class _Garbage:
    """An event no classifier understands (unique per instance, so it can be tracked)."""

    def __repr__(self) -> str:
        return f"<garbage {id(self):x}>"


# -- the harness: one engine, its loop, and the checks -------------------------------------
@attrs.define(eq=False)
class _Sent:
    event: Any
    task: asyncio.Task[bool]
    garbage: bool


class Harness:
    """One engine on a virtual clock with an instrumented copy of `spec`, plus every check.

    Usable without hypothesis too (the stress test drives it directly).
    """

    SETTLE_ROUNDS = 24
    DRIVE_ROUNDS = 2000

    def __init__(self, spec: Spec, loop: asyncio.AbstractEventLoop, *,
                 data: DataFactory | None = None, allow_errors: bool = False,
                 max_sessions: int = 2_000_000) -> None:
        self.original = spec
        self.loop = loop
        self.data = data
        self.allow_errors = allow_errors
        self.violations: list[str] = []
        self.spec = _instrument(spec, self)
        self.clock = VirtualClock()
        self.endings: list[Ended] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.engine = Engine(clock=self.clock, send=lambda reply: None,
                             on_end=self.endings.append,
                             on_error=self._on_error,
                             trace=self._on_trace, max_sessions=max_sessions)
        # What the trace told us.
        self.current: dict[str, Session] = {}
        self.fired: dict[str, set[int]] = {}  # per live session: generations timed out
        self.arrivals: dict[str, list[int]] = {}
        self.position: dict[tuple[str, int], int] = {}
        self.last_stepped: dict[str, int] = {}
        self.results: dict[int, list[tuple[str, bool]]] = {}
        self.stepped: dict[int, int] = {}
        self.dropped: set[int] = set()
        self.crashed: set[int] = set()  # consumed by a guard that raised: no step, no action
        self.forced: set[str] = set()  # keys forced by hand: their data may not fit the state
        # What we did.
        self.sent: dict[int, _Sent] = {}
        self.settled: list[Any] = []
        self.cancelled: set[int] = set()
        self.starts: list[tuple[str, asyncio.Task[Session]]] = []
        self.waiters: list[tuple[str, int, asyncio.Future[Ended]]] = []
        self.running: dict[str, int] = {}
        self.faults: set[str] = set()
        self.injected = 0
        self.hold = False
        self.gate = asyncio.Event()
        self.peak_sessions = 0
        self.stats: dict[str, int] = {}

    # -- instrumentation callbacks ---------------------------------------------------------
    def fail(self, message: str) -> None:
        self.violations.append(f"t={self.clock.now():g}: {message}")

    def count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def action_started(self, key: str) -> None:
        n = self.running.get(key, 0)
        if n:
            self.fail(f"a second action started on {key!r} while {n} ran")
        self.running[key] = n + 1

    def action_done(self, key: str) -> None:
        n = self.running.get(key, 0) - 1
        if n:
            self.running[key] = n
        else:
            self.running.pop(key, None)

    def _on_error(self, key: str, exc: BaseException) -> None:
        if key not in self.forced:  # after a forced state the data may not fit it
            self.errors.append((key, exc))

    def _on_trace(self, r: TraceRecord) -> None:
        kind, key = r.kind, r.key
        self.count(kind)
        if kind == "event":
            eid = id(r.event)
            if eid in self.sent:
                arrivals = self.arrivals.setdefault(key, [])
                self.position[(key, eid)] = len(arrivals)
                arrivals.append(eid)
        elif kind == "result":
            self._on_result(key, id(r.event), bool(r.consumed))
        elif kind == "reply":
            if (self.spec.busy is Busy.DROP and r.text == self.spec.busy_reply
                    and id(r.event) in self.sent):
                self.dropped.add(id(r.event))
        elif kind == "step":
            self._on_step(r)
        elif kind in ("force", "deadline"):
            if key not in self.current:
                self.fail(f"{kind} on {key!r} which has no live session")
            assert r.session is not None
            self.current[key] = r.session
        elif kind == "end":
            self.fired.pop(key, None)
            self.forced.discard(key)
            if r.reason == "error":
                self.crashed.update(e for e in self.arrivals.get(key, ())
                                    if e not in self.stepped)
            if self.current.pop(key, None) is None:
                self.fail(f"{key!r} ended ({r.reason}) but had no live session")

    def _on_result(self, key: str, eid: int, consumed: bool) -> None:
        if eid not in self.sent:
            return
        self.results.setdefault(eid, []).append((key, consumed))
        if consumed and sum(c for _, c in self.results[eid]) > 1:
            self.fail(f"event {self.sent[eid].event!r} consumed twice")
        if not consumed or eid in self.dropped:
            return
        index = self.position.get((key, eid))
        if index is None:
            return
        for earlier in self.arrivals[key][:index]:
            if earlier in self.results or earlier in self.cancelled:
                continue
            if self.sent[earlier].task.done():
                continue  # it raised (garbage): resolved without a result
            self.fail(f"event {self.sent[eid].event!r} consumed on {key!r} before the earlier "
                      f"{self.sent[earlier].event!r} was handled or handed back")

    def _on_step(self, r: TraceRecord) -> None:
        key, name, session = r.key, r.name, r.session
        assert session is not None
        # A start has no source state, a timer no event: a user's event may be *named* start.
        if r.source is None:
            name = "start"
        elif r.event is None and name in ("timeout", "warning"):
            name = "timer " + name
        else:
            name = "event"
        self.count(name)
        prev = self.current.get(key)
        if session.state not in self.spec.by_name:
            self.fail(f"step to undeclared state {session.state!r} on {key!r}")
        if name == "start":
            if prev is not None:
                self.fail(f"start on {key!r} over a live session in {prev.state!r}")
        elif prev is None:
            self.fail(f"step {name!r} on {key!r} which has no live session")
        elif name == "timer timeout":
            if prev.deadline is None or prev.deadline != r.at:
                self.fail(f"timeout on {key!r} fired at {r.at}, deadline was {prev.deadline}")
            fired = self.fired.setdefault(key, set())
            if prev.generation in fired:
                self.fail(f"timeout of generation {prev.generation} on {key!r} fired twice")
            fired.add(prev.generation)
        elif name == "timer warning":
            # A warning waits for a running action on its key, so it may come late; never early.
            if prev.warn_at is None or r.at < prev.warn_at:
                self.fail(f"warning on {key!r} fired at {r.at}, warn_at was {prev.warn_at}")
        else:
            eid = id(r.event)
            if eid in self.sent:
                self.stepped[eid] = self.stepped.get(eid, 0) + 1
                if self.stepped[eid] > 1:
                    self.fail(f"event {r.event!r} stepped a session twice")
                index = self.position.get((key, eid))
                if index is not None:
                    if index < self.last_stepped.get(key, -1):
                        self.fail(f"event {r.event!r} handled on {key!r} after a later one")
                    self.last_stepped[key] = index
        self.current[key] = session

    # -- driving ---------------------------------------------------------------------------
    async def _settle(self, rounds: int) -> None:
        for _ in range(rounds):
            await asyncio.sleep(0)

    def settle(self) -> None:
        self.loop.run_until_complete(self._settle(self.SETTLE_ROUNDS))

    def drive(self, what: str, coro: Any) -> Any:
        """Run `coro` to completion; a call that stops making progress (its virtual time stands
        still for DRIVE_ROUNDS loop rounds) is a violation: it waits on something that cannot
        happen."""
        task = self.loop.create_task(coro)

        async def spin() -> None:
            idle, now = 0, self.clock.now()
            while idle < self.DRIVE_ROUNDS and not task.done():
                await asyncio.sleep(0)
                idle = 0 if self.clock.now() != now else idle + 1  # stuck: time stands still
                now = self.clock.now()

        self.loop.run_until_complete(spin())
        if not task.done():
            self.fail(f"{what} did not complete: it waits on something that cannot happen")
            task.cancel()
            self.loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            return None
        self.settle()
        return task.result()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a sync engine call inside the loop (some need a running loop), then settle."""
        async def inside() -> Any:
            return fn()

        result = self.loop.run_until_complete(inside())
        self.settle()
        return result

    def message(self, user: str, text: str, group: str | None) -> Message:
        return Message(text, sender=user, group=group)

    def start(self, user: str, group: str | None, kind: str, replace: bool,
              text: str = "/start") -> None:
        """Start a session for `user`: with the machine's `data` factory, keyed by `kind`;
        otherwise as the spec declares (`Spec.begin`: its data and kind from `text`'s
        arguments; a refused start, `StartError`, is counted and starts nothing)."""
        event = self.message(user, text, group)
        if self.data is not None:
            data = dict(self.data(event))
        else:
            try:
                opening = self.spec.begin(event, seed=self.stats.get("rule_start", 0))
            except StartError:
                self.count("start_refused")
                return
            data = opening.data
            if self.spec.start is not None:
                kind = opening.kind
        key = self.engine.key(kind, event)
        task = self.loop.create_task(self.engine.start(self.spec, key, data=data, event=event,
                                                       replace=replace))
        self.starts.append((key, task))
        self.count("rule_start")
        self.settle()
        if task.done() and not task.cancelled():
            exc = task.exception()
            if isinstance(exc, SessionExists):
                if replace:
                    self.fail(f"start on {key!r} with replace=True raised SessionExists")
            elif exc is not None:
                self.fail(f"start on {key!r} raised {exc!r}")
        self.peak_sessions = max(self.peak_sessions, len(self.engine))

    def send(self, event: Any, *, garbage: bool = False, key: str | None = None) -> None:
        coro = (self.engine.dispatch(event) if key is None
                else self.engine.deliver(key, event))
        task = self.loop.create_task(coro)
        self.sent[id(event)] = _Sent(event, task, garbage)
        self.count("rule_send")
        self.settle()

    def advance(self, seconds: float) -> None:
        self.count("rule_advance")
        self.drive(f"advance({seconds})", self.clock.advance(seconds))

    def keep(self, key: str, seconds: float) -> None:
        if key in self.engine:
            self.call(lambda: self.engine.set_deadline(key, self.clock.now() + seconds))

    def stop(self, key: str) -> None:
        had = key in self.engine
        if self.call(lambda: self.engine.stop(key)) != had:
            self.fail(f"stop({key!r}) returned {not had} though the key was "
                      f"{'live' if had else 'free'}")

    def force(self, key: str, state: str) -> None:
        if key in self.engine:
            session = self.call(lambda: self.engine.force(key, state))
            self.forced.add(key)
            if session.state != state:
                self.fail(f"force({key!r}, {state!r}) left the session in {session.state!r}")

    def wait_ended(self, key: str) -> None:
        session = self.engine.session(key)
        if session is not None:
            self.waiters.append((key, session.id, self.call(lambda: self.engine.wait_ended(key))))

    def release(self) -> None:
        self.hold = False
        self.gate.set()
        self.gate = asyncio.Event()
        self.settle()

    def cancel(self, index: int) -> None:
        pending = [s for s in self.sent.values() if not s.task.done()]
        pending_starts = [t for _, t in self.starts if not t.done()]
        if not pending and not pending_starts:
            return
        everything: list[asyncio.Task[Any]] = [s.task for s in pending] + pending_starts
        task = everything[index % len(everything)]
        for s in pending:
            if s.task is task:
                self.cancelled.add(id(s.event))
        task.cancel()
        self.settle()

    def close(self) -> None:
        self.release()
        self.drive("engine.close()", self.engine.close())
        self.check(final=True)
        leftovers: list[asyncio.Task[Any]] = [s.task for s in self.sent.values()
                                              if not s.task.done()]
        leftovers += [t for _, t in self.starts if not t.done()]
        if leftovers:
            self.fail(f"{len(leftovers)} calls still pending after close (lost events)")
            for task in leftovers:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))

    # -- the checks ------------------------------------------------------------------------
    def check(self, final: bool = False) -> None:
        engine, now = self.engine, self.clock.now()
        live: dict[str, Session] = {}
        for info in engine.sessions():
            session = engine.session(info.key)
            assert session is not None
            live[info.key] = session
            state = self.spec.by_name.get(session.state)
            if state is None or session.spec != self.spec.name:
                self.fail(f"{info.key!r} is in undeclared state {session.state!r}")
            elif state.final and info.key not in engine.busy_keys():
                # (while its exit/enter actions still run, a session sits in the final state)
                self.fail(f"{info.key!r} lives on in final state {session.state!r}")
            if session.deadline is not None and session.deadline < now:
                self.fail(f"{info.key!r} has a deadline {session.deadline} in the past")
            if (session.warn_at is not None and session.warn_at < now
                    and info.key not in engine.busy_keys()):
                self.fail(f"{info.key!r} has a warning at {session.warn_at} in the past")
        if set(live) != set(self.current):
            self.fail(f"the trace and the engine disagree on live keys: "
                      f"{sorted(set(live) ^ set(self.current))}")
        footprint = engine.footprint()
        waiting_starts = {key for key, task in self.starts if not task.done()}
        for key, inbox in footprint["busy"].items():
            if key not in live and key not in waiting_starts:
                self.fail(f"ended key {key!r} still holds a turn (inbox {inbox})")
            if inbox > self.spec.queue_limit + 2 + len(waiting_starts):
                self.fail(f"inbox of {key!r} holds {inbox} > queue_limit "
                          f"{self.spec.queue_limit}")
        for key in footprint["waiting"]:
            if key not in live:
                self.fail(f"ended key {key!r} still has end waiters")
        if footprint["heap"] > 4 * max(self.peak_sessions, 1) + 1024 + 2:
            self.fail(f"timer heap grew to {footprint['heap']} entries for at most "
                      f"{self.peak_sessions} sessions")
        if footprint["tasks"] > 2 * len(footprint["busy"]):  # timer work waiting on busy keys
            self.fail(f"{footprint['tasks']} background tasks for "
                      f"{len(footprint['busy'])} busy keys")
        if len(live) > engine.max_sessions:
            self.fail(f"{len(live)} live sessions > max_sessions {engine.max_sessions}")
        for key, sid, fut in self.waiters:
            session = live.get(key)
            alive = session is not None and session.id == sid
            if alive == fut.done():
                self.fail(f"end waiter of {key!r}: session {'alive' if alive else 'ended'} "
                          f"but waiter {'done' if fut.done() else 'pending'}")
        self.waiters = [w for w in self.waiters if not w[2].done()]
        self._check_events(live, final)
        for key, exc in self.errors:
            if not isinstance(exc, InjectedFault) and not self.allow_errors:
                self.fail(f"{key!r}: an action or guard raised {exc!r}")
        self.errors.clear()

    def _check_events(self, live: Mapping[str, Session], final: bool) -> None:
        busy = set(self.engine.busy_keys())
        for eid, s in self.sent.items():
            results = self.results.get(eid, [])
            stepped = self.stepped.get(eid, 0)
            if not s.task.done():
                if final:
                    continue  # reported by close()
                arrived = [k for k, e in self.position if e == eid]
                waiting_on = arrived[-1] if arrived else None
                if waiting_on is None or len(results) == len(arrived):
                    if not s.garbage:
                        self.fail(f"dispatch of {s.event!r} pending but waiting on no key")
                elif waiting_on not in live or waiting_on not in busy:
                    self.fail(f"event {s.event!r} waits on {waiting_on!r}, which is "
                              f"{'not busy' if waiting_on in live else 'ended'}: lost")
                continue
            if s.task.cancelled():
                continue
            exc = s.task.exception()
            if exc is not None:
                if not (s.garbage and isinstance(exc, EventError)):
                    self.fail(f"dispatch of {s.event!r} raised {exc!r}")
                continue
            if s.task.result():
                if eid not in self.dropped and eid not in self.crashed and stepped != 1:
                    self.fail(f"{s.event!r} was consumed but stepped {stepped} times")
                if not any(c for _, c in results):
                    self.fail(f"{s.event!r}: dispatch returned True, no delivery consumed it")
            elif stepped or any(c for _, c in results):
                self.fail(f"{s.event!r} was handed back but stepped or was consumed")
        done = [eid for eid, s in self.sent.items() if s.task.done()]
        if len(done) > 256:  # check settled events no more, so long runs stay fast
            for eid in done[:-64]:
                # Still referenced: ids identify events, and a freed event's id is reused.
                self.settled.append(self.sent.pop(eid).event)

    def raise_violations(self) -> None:
        if self.violations:
            found, self.violations = self.violations, []
            raise AssertionError("conversation invariants broken:\n  " + "\n  ".join(found))


# -- instrumenting a spec -------------------------------------------------------------------
def _wrap(fn: Callable[[Context], Any] | None, harness: Harness
          ) -> Callable[[Context], Any] | None:
    if fn is None:
        return None
    action = fn

    def wrapped(ctx: Context) -> Any:
        key = ctx.key
        harness.action_started(key)
        try:
            if key in harness.faults:
                harness.faults.discard(key)
                harness.injected += 1
                raise InjectedFault(f"fault injected into {getattr(action, '__name__', action)}")
            result = action(ctx)
        except BaseException:
            harness.action_done(key)
            raise
        if not inspect.isawaitable(result) and not harness.hold:
            harness.action_done(key)
            return result
        gate = harness.gate if harness.hold else None
        harness.action_done(key)  # the rest runs (if ever) when the engine awaits it

        async def finish() -> None:
            harness.action_started(key)
            try:
                if inspect.isawaitable(result):
                    await result
                if gate is not None:
                    await gate.wait()
            finally:
                harness.action_done(key)

        return finish()

    wrapped.__name__ = wrapped.__qualname__ = getattr(action, "__name__", "action")
    return wrapped


def _instrument(spec: Spec, harness: Harness) -> Spec:
    def on(t: On) -> On:
        return attrs.evolve(t, action=_wrap(t.action, harness))

    def state(s: State) -> State:
        timeout = s.timeout
        if timeout is not None:
            timeout = attrs.evolve(timeout, action=_wrap(timeout.action, harness),
                                   warn=_wrap(timeout.warn, harness),
                                   when=tuple(attrs.evolve(w, action=_wrap(w.action, harness))
                                              for w in timeout.when))
        return attrs.evolve(s, on=tuple(on(t) for t in s.on), timeout=timeout,
                            enter=_wrap(s.enter, harness), exit=_wrap(s.exit, harness))

    return attrs.evolve(spec, states=tuple(state(s) for s in spec.states),
                        any_state=tuple(on(t) for t in spec.any_state))


# -- the machine -----------------------------------------------------------------------------
def _alphabet(spec: Spec, texts: Iterable[str]) -> list[str]:
    out = [f"/{name}" for name in sorted(spec.events)]
    out += sorted(spec.events)
    out += ["hello", "42", "7", "/zzz-unknown", "", " ", "/", "1-100", "好", "/ x"]
    out += list(texts)
    return list(dict.fromkeys(out))


def conversation_machine(
    spec: Spec | st.SearchStrategy[Spec],
    *,
    data: DataFactory | None = None,
    kinds: Sequence[str] = ("member", "group"),
    users: Sequence[str] = ("ann", "bob", "cy"),
    groups: Sequence[str | None] = (None, "g1"),
    texts: Sequence[str] = (),
    allow_errors: bool = False,
    max_advance: float = 120.0,
) -> type[RuleBasedStateMachine]:
    """A hypothesis `RuleBasedStateMachine` exercising `spec` (or specs drawn from a strategy).

    Sessions start as the spec declares (`Spec.start`, from start texts drawn from "/start",
    "/start 3", "/start x" and the `texts` that begin with "/start "; a refused one starts
    nothing), or with `data(start_event)` as their data
    when given; `texts` adds messages worth sending (answers, commands with arguments) to the
    spec's own alphabet;
    `allow_errors` tolerates exceptions from the spec's own actions (not only injected
    ones). Use `conversation_machine(...).TestCase` as a test class.
    """
    spec_strategy = spec if isinstance(spec, st.SearchStrategy) else st.just(spec)
    user_st = st.sampled_from(tuple(users))
    group_st = st.sampled_from(tuple(groups))
    kind_st = st.sampled_from(tuple(kinds))
    start_text_st = st.sampled_from(("/start", "/start 3", "/start x",
                                     *(t for t in texts if t.startswith("/start "))))

    class ConversationMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.h: Harness | None = None
            self.alphabet: list[str] = []

        @property
        def harness(self) -> Harness:
            assert self.h is not None
            return self.h

        @initialize(drawn=spec_strategy)
        def setup(self, drawn: Spec) -> None:
            asyncio.set_event_loop(self.loop)
            self.h = Harness(drawn, self.loop, data=data, allow_errors=allow_errors)
            self.alphabet = _alphabet(drawn, texts)

        def key(self, user: str, group: str | None, kind: str) -> str:
            return self.harness.engine.key(kind, Message("k", sender=user, group=group))

        @rule(user=user_st, group=group_st, kind=kind_st, replace=st.booleans(),
              text=start_text_st)
        def start(self, user: str, group: str | None, kind: str, replace: bool,
                  text: str) -> None:
            self.harness.start(user, group, kind, replace, text)

        @rule(user=user_st, group=group_st, pick=st.data())
        def send(self, user: str, group: str | None, pick: st.DataObject) -> None:
            text = pick.draw(st.sampled_from(self.alphabet) | st.text(max_size=6), label="text")
            self.harness.send(Message(text, sender=user, group=group))

        @rule(user=user_st, group=group_st, kind=kind_st, direct=st.booleans())
        def send_garbage(self, user: str, group: str | None, kind: str, direct: bool) -> None:
            key = self.key(user, group, kind) if direct else None
            self.harness.send(_Garbage(), garbage=True, key=key)

        @rule(how=st.sampled_from(["next", "before-next", "free"]),
              seconds=st.floats(0, max_advance, allow_nan=False, allow_infinity=False))
        def advance(self, how: str, seconds: float) -> None:
            h = self.harness
            nxt = h.engine.next_deadline()
            if how != "free" and nxt is not None:
                seconds = max(0.0, nxt - h.clock.now())
                if how == "before-next":
                    seconds = max(0.0, seconds - min(0.5, seconds / 2))
            h.advance(seconds)

        @rule(user=user_st, group=group_st, kind=kind_st,
              seconds=st.floats(0.001, max_advance, allow_nan=False))
        def keep(self, user: str, group: str | None, kind: str, seconds: float) -> None:
            self.harness.keep(self.key(user, group, kind), seconds)

        @rule(user=user_st, group=group_st, kind=kind_st)
        def stop(self, user: str, group: str | None, kind: str) -> None:
            self.harness.stop(self.key(user, group, kind))

        @rule(user=user_st, group=group_st, kind=kind_st, pick=st.data())
        def force(self, user: str, group: str | None, kind: str, pick: st.DataObject) -> None:
            names = [s.name for s in self.harness.spec.states]
            self.harness.force(self.key(user, group, kind),
                               pick.draw(st.sampled_from(names), label="state"))

        @rule(user=user_st, group=group_st, kind=kind_st)
        def fault(self, user: str, group: str | None, kind: str) -> None:
            self.harness.faults.add(self.key(user, group, kind))

        @rule(user=user_st, group=group_st, kind=kind_st)
        def wait_ended(self, user: str, group: str | None, kind: str) -> None:
            self.harness.wait_ended(self.key(user, group, kind))

        @precondition(lambda self: self.h is not None and not self.h.hold)
        @rule()
        def hold(self) -> None:
            self.harness.hold = True

        @precondition(lambda self: self.h is not None and self.h.hold)
        @rule()
        def release(self) -> None:
            self.harness.release()

        @rule(index=st.integers(0, 50))
        def cancel(self, index: int) -> None:
            self.harness.cancel(index)

        @invariant()
        def conversation_invariants(self) -> None:
            if self.h is not None:
                self.h.check()
                self.h.raise_violations()

        def teardown(self) -> None:
            try:
                if self.h is not None:
                    self.h.close()
                    self.h.raise_violations()
            finally:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending,
                                                                return_exceptions=True))
                self.loop.close()
                asyncio.set_event_loop(None)

    name = spec.name if isinstance(spec, Spec) else "RandomSpecs"
    ConversationMachine.__name__ = ConversationMachine.__qualname__ = (
        "Machine_" + "".join(ch if ch.isalnum() else "_" for ch in name))
    return ConversationMachine


# -- random specs ------------------------------------------------------------------------------
EVENTS = ("a", "b", "c")


def has_digit(ctx: Context) -> bool:
    return any(ch.isdigit() for ch in ctx.text)


def even_length(ctx: Context) -> bool:
    return len(ctx.text) % 2 == 0


def counter_odd(ctx: Context) -> bool:
    return int(ctx.data.get("n", 0)) % 2 == 1


TEXT_GUARDS: tuple[Callable[[Context], bool], ...] = (has_digit, even_length)
DATA_GUARDS: tuple[Callable[[Context], bool], ...] = (counter_odd,)


def say_where(ctx: Context) -> None:
    ctx.reply(f"{ctx.state} on {ctx.name}")


def count(ctx: Context) -> None:
    ctx.data["n"] = int(ctx.data.get("n", 0)) + 1


async def say_later(ctx: Context) -> None:
    await asyncio.sleep(0)
    ctx.reply(f"later: {ctx.state} on {ctx.name}")


ACTIONS: tuple[Callable[[Context], Any], ...] = (say_where, count, say_later)


def parse_count(args: StartArgs) -> dict[str, Any]:
    """A random spec's start: `[N]`, a whole number into `data["n"]` (else ValueError)."""
    if len(args.words) > 1 or (args.words and not args.words[0].isdecimal()):
        raise ValueError(f"expected [N], got {args.text!r}")
    return {"n": int(args.words[0])} if args.words else {}


@st.composite
def specs(
    draw: st.DrawFn,
    *,
    max_states: int = 5,
    events: Sequence[str] = EVENTS,
    guards: bool = True,
    data_guards: bool = True,
    actions: bool = True,
    timeouts: bool = True,
    warnings: bool = True,
    guarded_timeouts: bool = True,
    back: bool = True,
    calls: bool = True,
    starts: bool = True,
    any_state: bool = True,
    policies: bool = True,
    name: str = "random",
) -> Spec:
    """Random valid specs: states (a chain `next` keeps each reachable and gives each an exit),
    transitions on `events` and `ANY` to states, `KEEP` or `STOP`, text and data guards,
    sync and async actions, enter/exit actions, timeouts (to a state, `KEEP` or `STOP`) with
    warnings and guarded branches (`When`, on the data guard), `BACK` targets, calls of
    random child specs (sub-conversations: paused or running timeouts, a data key, unwind
    on `exit`), a start declaration (`Start`: `[N]` into `data["n"]`, member or group,
    sometimes group-only), any-state transitions, final states and every busy policy."""
    n = draw(st.integers(1, max_states), label="states")
    names = [f"s{i}" for i in range(n)]
    targets: list[Target] = [*names, KEEP, STOP, *([BACK] if back else [])]
    guard_pool: tuple[Callable[[Context], bool], ...] = (
        (TEXT_GUARDS if guards else ()) + (DATA_GUARDS if data_guards else ()))
    event_pool = [*events, ANY]

    def maybe_action() -> Callable[[Context], Any] | None:
        if not actions or not draw(st.booleans()):
            return None
        action: Callable[[Context], Any] = draw(st.sampled_from(ACTIONS))
        return action

    def transition(event: str) -> On:
        guard: Callable[[Context], bool] | None = None
        if len(guard_pool) > 0 and draw(st.booleans()):
            guard = draw(st.sampled_from(guard_pool))
        return On(event, draw(st.sampled_from(targets)), guard=guard, action=maybe_action(),
                  reset_timeout=draw(st.booleans()))

    states: list[State] = []
    for i, state_name in enumerate(names):
        final = i == n - 1 and i > 0 and draw(st.booleans())
        if final:
            states.append(State(state_name, final=True, enter=maybe_action()))
            continue
        on = [On("next", names[i + 1] if i + 1 < n else STOP)]
        on += [transition(draw(st.sampled_from(event_pool)))
               for _ in range(draw(st.integers(0, 4)))]
        timeout = None
        if timeouts and draw(st.booleans()):
            after = draw(st.sampled_from([0.5, 1.0, 5.0, 10.0, 30.0]))
            warn_before = (draw(st.sampled_from([0.25, 0.5])) * after
                           if warnings and draw(st.booleans()) else None)
            timeout_targets: list[Target] = [*names, KEEP, STOP]
            when: list[When] = []
            if guarded_timeouts and data_guards:
                when = [When(draw(st.sampled_from(timeout_targets)), guard=counter_odd,
                             action=maybe_action())
                        for _ in range(draw(st.integers(0, 2)))]
            timeout = Timeout(after, draw(st.sampled_from(timeout_targets)),
                              action=maybe_action(), warn_before=warn_before,
                              warn=say_where if warn_before is not None else None, when=when)
        call = None
        if calls and draw(st.booleans(), label="calls"):
            child = draw(specs(max_states=3, events=events, guards=guards,
                               data_guards=data_guards, actions=actions, timeouts=timeouts,
                               warnings=warnings, guarded_timeouts=guarded_timeouts, back=back,
                               any_state=any_state, policies=False, calls=False,
                               name=f"{name}.{state_name}"), label="child")
            ending: list[Target] = [*names, STOP]
            call = Call(child, on_end={"*": draw(st.sampled_from(ending))},
                        data_key=draw(st.sampled_from([None, "sub"])),
                        timeout=draw(st.sampled_from(["paused", "running"])),
                        unwind=draw(st.sampled_from([(), ("exit",)])))
        states.append(State(state_name, on=on, timeout=timeout, enter=maybe_action(),
                            exit=maybe_action(), call=call))
    everywhere: list[On] = []
    if any_state:
        for event in draw(st.lists(st.sampled_from(["help", "exit", *events]), max_size=2,
                                   unique=True)):
            everywhere.append(transition(event))
    busy = draw(st.sampled_from(list(Busy))) if policies else Busy.QUEUE
    start = None
    if starts and draw(st.booleans(), label="start"):
        start = Start(parse_count, kind=draw(st.sampled_from(["member", "group"])),
                      usage="[N]", group_only=draw(st.booleans()))
    return Spec(name=name, initial=names[0], states=states, any_state=everywhere, busy=busy,
                queue_limit=draw(st.integers(1, 4)) if policies else 32, start=start)


# -- random forms ------------------------------------------------------------------------------
FORM_TEXTS: Final = ("12", "7", "abc", "a long answer here", "2024-01-01", "31/12/2024", "red",
                     "yes", "no", "back", "skip", "cancel", "edit", "edit f0", "edit f1", "ok")
"""Answers and words worth sending to a random form (`conversation_machine(forms(),
texts=FORM_TEXTS)`)."""


@st.composite
def forms(draw: st.DrawFn, *, max_slots: int = 4, name: str = "random-form") -> Spec:
    """Random forms (`convo_fsm.forms.form`): slots of every parser (text with a length
    limit, integer range, choice, date), optional or not, retry limits with either give-up,
    per-slot timeouts with warnings; with or without the summary, with or without an intro."""
    from convo_fsm import forms as f

    slots = []
    for i in range(draw(st.integers(1, max_slots), label="slots")):
        kind = draw(st.sampled_from(["text", "integer", "choice", "date"]))
        parser = {"text": f.text(max_length=8), "integer": f.integer(1, 20),
                  "choice": f.choice("red", "blue"), "date": f.date()}[kind]
        optional = draw(st.booleans())
        timeout = draw(st.sampled_from([None, 5.0, 30.0]))
        warn = timeout is not None and draw(st.booleans())
        slots.append(f.Slot(
            f"f{i}", f"f{i}?", parser, optional=optional, retries=draw(st.integers(1, 3)),
            give_up=draw(st.sampled_from(["cancel", "skip"])) if optional else "cancel",
            timeout=timeout, warn_before=timeout / 2 if warn and timeout else None,
            warning="hurry" if warn else None))
    return f.form(name, slots, confirm=draw(st.booleans()),
                  intro=draw(st.sampled_from([None, "hello"])))
