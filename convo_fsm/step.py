"""The step: (spec, session, event, now) -> (new session, effects). Pure.

No IO, no clock, no asyncio: the caller passes `now` and performs the
effects it gets back, in order:

- `Arm(deadline, warn_at)`: the session's timers are now these (None = none);
- `Run(action, what)`: call a user action (`what` is exit/action/enter/timeout/warn);
- `End(reason)`: the session is over (`final`, `stop` or `timeout`).

Guards decide which transition fires. `step` calls sync guards itself; a
caller that has already chosen (the engine, which also awaits async guards)
passes the chosen transition in `Input.chosen`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeAlias

from convo_fsm.context import Context
from convo_fsm.session import Session
from convo_fsm.spec import KEEP, STOP, Action, On, Spec, State, Target, Timeout

__all__ = [
    "Arm",
    "Effect",
    "End",
    "Force",
    "GuardFailed",
    "Input",
    "Result",
    "Run",
    "TimerFired",
    "achoose",
    "choose",
    "new_session",
    "step",
]


# What comes in and goes out are named tuples: one of each is made per event, and a
# tuple costs a fraction of a frozen attrs instance to build. On the per-event paths they
# are built with `_new(Cls, (fields...))`, what a named tuple's own (Python-level) `__new__`
# does, without that extra call: the same value at half the cost.
_new = tuple.__new__


# -- what comes in ---------------------------------------------------------------------------
class Input(NamedTuple):
    """An event named `name` (the raw `event` is what guards and actions see)."""

    name: str
    event: Any = None
    chosen: On | None = None


class TimerFired(NamedTuple):
    """The session's timeout (or, with `warning`, its warning) fell due."""

    warning: bool = False


class Force(NamedTuple):
    """Put the session into `state` (admin): timers re-armed, no actions run."""

    state: str


# -- what goes out ---------------------------------------------------------------------------
class Run(NamedTuple):
    action: Action
    what: str


class Arm(NamedTuple):
    deadline: float | None
    warn_at: float | None


class End(NamedTuple):
    reason: str


Effect: TypeAlias = Run | Arm | End


class Result(NamedTuple):
    """`handled` is False when no transition wanted the event: the session is unchanged."""

    session: Session
    effects: tuple[Effect, ...]
    handled: bool = True


def _timers(state: State, now: float) -> tuple[float | None, float | None]:
    timeout = state.timeout
    if timeout is None:
        return None, None
    deadline = now + timeout.after
    return deadline, (None if timeout.warn_before is None else deadline - timeout.warn_before)


_FIRST_HISTORY: dict[str, tuple[str]] = {}


def _first_history(state: str) -> tuple[str]:
    """A new session's history, `(state,)`: one shared tuple per state name (a tuple is
    immutable, and 56 bytes less per idle session add up over a million)."""
    found = _FIRST_HISTORY.get(state)
    if found is None:
        found = _FIRST_HISTORY[state] = (state,)
    return found


def new_session(spec: Spec, key: str, now: float, data: dict[str, Any] | None = None) -> Result:
    """A session entering `spec.initial`, with the effects of that entry."""
    state = spec.by_name[spec.initial]
    deadline, warn_at = _timers(state, now)
    session = Session(key, spec.name, state.name, {} if data is None else data,
                      deadline, warn_at, 0, _first_history(state.name), now, now)
    effects: list[Effect] = [Arm(deadline, warn_at)]
    if state.enter is not None:
        effects.append(Run(state.enter, "enter"))
    if state.final:
        effects.append(End("final"))
    return Result(session, tuple(effects))


def choose(spec: Spec, session: Session, name: str, event: Any, now: float) -> On | None:
    """The first candidate whose (sync) guard passes, or None."""
    candidates = spec.lookup(session.state, name)
    if not candidates or candidates[0].guard is None:
        return candidates[0] if candidates else None
    ctx = Context(session, event, name, now)
    for t in candidates:
        if t.guard is None:
            return t
        if t.guard_is_async:
            raise TypeError(f"guard {t.guard_name} is async: use the Engine, or pass Input.chosen")
        if t.guard(ctx):
            return t
    return None


class GuardFailed(Exception):
    """A guard raised `error` (the session it guards should end)."""

    def __init__(self, on: On, error: Exception) -> None:
        super().__init__(f"guard {on.guard_name} raised {error!r}")
        self.on, self.error = on, error


async def achoose(candidates: Sequence[On], ctx: Context) -> On | None:
    """`choose` for hosts: the first candidate whose guard, sync or async, passes; a guard
    that raises is reported as `GuardFailed`. Pass the result to `step` in `Input.chosen`."""
    for t in candidates:
        if t.guard is None:
            return t
        try:
            ok = t.guard(ctx)
            if inspect.isawaitable(ok):
                ok = await ok
        except Exception as exc:
            raise GuardFailed(t, exc) from exc
        if ok:
            return t
    return None


def step(spec: Spec, session: Session, event: Input | TimerFired | Force, now: float) -> Result:
    """Apply one event to `session`; return the new session and the effects to perform."""
    state = spec.by_name[session.state]
    if isinstance(event, Input):
        t = event.chosen if event.chosen is not None else choose(
            spec, session, event.name, event.event, now)
        if t is None:
            return Result(session, (), handled=False)
        return _go(spec, session, state, t.target, t.action, "action", "stop", now,
                   t.reset_timeout)
    if isinstance(event, TimerFired):
        timeout = state.timeout
        if event.warning:
            warned = session._replace(warn_at=None, updated=now)
            warn = None if timeout is None else timeout.warn
            return Result(warned, (Run(warn, "warn"),) if warn is not None else ())
        if timeout is None:  # a deadline set from outside the table (Engine.set_deadline)
            return _go(spec, session, state, STOP, None, "timeout", "timeout", now, True)
        if timeout.when:
            return _guarded_timeout(spec, session, state, timeout, now)
        return _go(spec, session, state, timeout.target, timeout.action, "timeout", "timeout",
                   now, True)
    target = spec.by_name[event.state]
    deadline, warn_at = _timers(target, now)
    forced = _moved(spec, session, target.name, deadline, warn_at, now)
    return Result(forced, (Arm(deadline, warn_at),) + ((End("final"),) if target.final else ()))


def _moved(spec: Spec, session: Session, state: str, deadline: float | None,
           warn_at: float | None, now: float) -> Session:
    history = session.history
    if state != session.state or len(history) == 0:
        history = (*history[1 - spec.history_limit:], state) if spec.history_limit > 1 else (state,)
    return _new(Session, (session.key, session.spec, state, session.data, deadline, warn_at,
                          session.generation + 1, history, session.started, now))


def _go(spec: Spec, session: Session, state: State, target: Target, action: Action | None,
        what: str, stop_reason: str, now: float, reset_timeout: bool) -> Result:
    effects: list[Effect]
    if target is KEEP:
        if not reset_timeout or state.timeout is None:
            same = Session(session.key, session.spec, session.state, session.data,
                           session.deadline, session.warn_at, session.generation,
                           session.history, session.started, now)
            return Result(same, (Run(action, what),) if action is not None else ())
        deadline, warn_at = _timers(state, now)
        arm = _new(Arm, (deadline, warn_at))
        return _new(Result, (_moved(spec, session, session.state, deadline, warn_at, now),
                             (arm, _new(Run, (action, what))) if action is not None else (arm,),
                             True))
    if target is STOP:
        effects = [Arm(None, None)]
        if state.exit is not None:
            effects.append(Run(state.exit, "exit"))
        if action is not None:
            effects.append(Run(action, what))
        effects.append(End(stop_reason))
        return Result(_moved(spec, session, session.state, None, None, now), tuple(effects))
    assert isinstance(target, str)
    new = spec.by_name[target]
    deadline, warn_at = _timers(new, now)
    effects = [Arm(deadline, warn_at)]
    if state.exit is not None:
        effects.append(Run(state.exit, "exit"))
    if action is not None:
        effects.append(Run(action, what))
    if new.enter is not None:
        effects.append(Run(new.enter, "enter"))
    if new.final:
        effects.append(End("final"))
    return Result(_moved(spec, session, target, deadline, warn_at, now), tuple(effects))


def _guarded_timeout(spec: Spec, session: Session, state: State, timeout: Timeout,
                     now: float) -> Result:
    """A timeout with `when` branches: the first whose (sync) guard passes is taken, else the
    timeout's own target and action. A guard that raises ends the session the way an action
    that raises does: its timers are cleared and the error is re-raised by a `Run`."""
    ctx = Context(session, None, "timeout", now)
    for branch in timeout.branches:
        if branch.guard is not None:
            try:
                if not branch.guard(ctx):
                    continue
            except Exception as exc:
                return Result(_moved(spec, session, session.state, None, None, now),
                              (Arm(None, None), Run(_reraise(exc, branch.guard_name), "timeout")))
        return _go(spec, session, state, branch.target, branch.action, "timeout", "timeout",
                   now, True)
    raise AssertionError("unreachable: a timeout's last branch has no guard")


def _reraise(exc: Exception, name: str | None) -> Action:
    def guard_failed(ctx: Context) -> None:
        raise exc

    guard_failed.__qualname__ = f"timeout guard {name} failed"
    return guard_failed
