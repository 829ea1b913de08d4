"""The step: (spec, session, input, now) -> (new session, effects). Pure.

Everything that decides how a session moves lives here and in `spec.py` (the
table); the engine and the stores only perform what this file returns. No IO,
no clock, no asyncio: the caller passes `now` and performs the effects it gets
back, in order (`convo_fsm.engine.effects` is that interpreter):

- `Arm(deadline, warn_at)`: the session's timers are now these (None = none);
- `Run(action, what)`: call a user action (`what` is exit/action/enter/timeout/warn);
- `End(reason)`: the session is over (`final`, `stop` or `timeout`).

The inputs, and the rules for each:

- `Input(name, event, chosen)`: an event. Guards decide which transition fires
  (`choose`; hosts with async guards use `achoose` and pass `chosen`). No
  candidate: not handled, the session is unchanged and the event goes back.
- `TimerFired(warning)`: the session's timeout (or its warning) fell due. A
  warning that comes at or after its deadline (a busy key, a restart) is not
  sent: it must never follow, or run ahead of, the timeout it announces.
- `SetDeadline(deadline)`: a deadline set from outside the table (AstrBot's
  `keep`, an admin): finite, the warning dropped, earlier timers outdated. When
  it falls due in a state without a timeout, the session ends ("timeout").
- `Force(state)`: put the session into `state` (admin, or a renamed state on
  restore): timers as on entry, no actions; a final state ends it.

Two rules are about performing, not choosing, and live here too:
- `interrupted(rest)`: an action cut short (timeout, stop, a newer event under
  `Busy.INTERRUPT`, a cancelled caller) leaves its step committed; the step's
  later actions do not run, but its `End` still does (a step into a final
  state still ends the session).
- `restore(...)`: what becomes of a stored session when a process starts again
  (`Policy`, `Decision`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import CoroutineType
from typing import Any, Literal, NamedTuple, TypeAlias

import attrs

from convo_fsm.context import Context
from convo_fsm.session import Session
from convo_fsm.spec import (
    BACK,
    BACK_KEY,
    KEEP,
    MAX_SECONDS,
    STOP,
    Action,
    On,
    Spec,
    State,
    Target,
    Timeout,
)

__all__ = [
    "Arm",
    "Decision",
    "Effect",
    "End",
    "Force",
    "GuardFailed",
    "Input",
    "Policy",
    "Result",
    "Run",
    "SetDeadline",
    "TimerFired",
    "achoose",
    "check_deadline",
    "choose",
    "interrupted",
    "new_session",
    "pick",
    "restore",
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


class SetDeadline(NamedTuple):
    """Replace the session's deadline (absolute clock time; None disarms it)."""

    deadline: float | None


def check_deadline(deadline: object, now: float) -> float | None:
    """`deadline` as a float, if it is None or a finite time within `MAX_SECONDS` of `now`;
    else `ValueError` naming it (a NaN deadline would corrupt every timer's order)."""
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, int | float):
        raise ValueError(f"deadline must be a number (clock time) or None, got {deadline!r}")
    value = float(deadline)
    if not math.isfinite(value) or abs(value - now) > MAX_SECONDS:
        raise ValueError(f"deadline must be a finite clock time within {MAX_SECONDS:g} s of "
                         f"now ({now!r}), got {deadline!r}")
    return value


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


def new_session(spec: Spec, key: str, now: float, data: dict[str, Any] | None = None,
                sid: int = 0) -> Result:
    """A session `sid` (unique per start) entering `spec.initial`, with that entry's effects."""
    state = spec.by_name[spec.initial]
    deadline, warn_at = _timers(state, now)
    session = Session(key, spec.name, state.name, {} if data is None else data,
                      deadline, warn_at, 0, _first_history(state.name), now, now, sid)
    effects: list[Effect] = [Arm(deadline, warn_at)]
    if state.enter is not None:
        effects.append(Run(state.enter, "enter"))
    if spec.uses_back:
        effects.append(Run(_snapshot_action(spec.back_limit), "enter"))
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


async def _plain_await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def pick(candidates: Sequence[On], ctx: Context) -> tuple[On | None, Awaitable[Any] | None, int]:
    """The guard rule without awaiting: the first candidate whose guard passes. A guard that
    raises is `GuardFailed`. Returns (chosen, None, -1) once decided; if a guard gives an
    awaitable, (None, that awaitable, its index): a host awaits it and goes on with `achoose`
    from there, so a table of sync guards costs no coroutine."""
    for i, t in enumerate(candidates):
        guard = t.guard
        if guard is None:
            return t, None, -1
        try:
            ok = guard(ctx)
        except Exception as exc:
            raise GuardFailed(t, exc) from exc
        if ok is not None and ok is not True and ok is not False and (
                type(ok) is CoroutineType or inspect.isawaitable(ok)):
            return None, ok, i
        if ok:
            return t, None, -1
    return None, None, -1


async def achoose(candidates: Sequence[On], ctx: Context,
                  wait: Callable[[Awaitable[Any]], Awaitable[Any]] = _plain_await, *,
                  start: int = 0, pending: Awaitable[Any] | None = None) -> On | None:
    """`choose` for hosts: the first candidate whose guard, sync or async, passes; a guard
    that raises is reported as `GuardFailed`. Pass the result to `step` in `Input.chosen`.
    `wait` awaits an async guard (the engine's makes it interruptible by a timeout).
    `start` and `pending` go on from where `pick` stopped."""
    for i in range(start, len(candidates)):
        t = candidates[i]
        if t.guard is None:
            return t
        try:
            ok = pending if i == start and pending is not None else t.guard(ctx)
            if inspect.isawaitable(ok):
                ok = await wait(ok)
        except Exception as exc:
            raise GuardFailed(t, exc) from exc
        if ok:
            return t
    return None


def step(spec: Spec, session: Session, event: Input | TimerFired | Force | SetDeadline,
         now: float) -> Result:
    """Apply one input to `session`; return the new session and the effects to perform."""
    kind = type(event)
    if kind is Force:
        return _force(spec, session, event.state, now)  # type: ignore[union-attr]
    if kind is SetDeadline:
        deadline = check_deadline(event.deadline, now)  # type: ignore[union-attr]
        moved = _new(Session, (session.key, session.spec, session.state, session.data,
                               deadline, None, session.generation + 1, session.history,
                               session.started, now, session.id))
        return _new(Result, (moved, (_new(Arm, (deadline, None)),), True))
    state = spec.by_name[session.state]
    if isinstance(event, Input):
        t = event.chosen if event.chosen is not None else choose(
            spec, session, event.name, event.event, now)
        if t is None:
            return Result(session, (), handled=False)
        if t.target is BACK:
            return _back(spec, session, state, t, now)
        return _go(spec, session, state, t.target, t.action, "action", "stop", now,
                   t.reset_timeout)
    if isinstance(event, TimerFired):
        timeout = state.timeout
        if event.warning:
            if session.deadline is not None and session.deadline <= now:
                return Result(session, (), handled=False)  # late: the timeout comes first
            warned = session._replace(warn_at=None, updated=now)
            warn = None if timeout is None else timeout.warn
            return Result(warned, (Run(warn, "warn"),) if warn is not None else ())
        if timeout is None:  # a deadline set from outside the table (SetDeadline)
            return _go(spec, session, state, STOP, None, "timeout", "timeout", now, True)
        if timeout.when:
            return _guarded_timeout(spec, session, state, timeout, now)
        return _go(spec, session, state, timeout.target, timeout.action, "timeout", "timeout",
                   now, True)
    raise TypeError(f"step() takes Input, TimerFired, Force or SetDeadline, got {event!r}")


def _force(spec: Spec, session: Session, name: str, now: float) -> Result:
    # The source state is not looked up: a restored session's may no longer exist.
    target = spec.by_name.get(name)
    if target is None:
        raise ValueError(f"spec {spec.name!r} has no state {name!r}")
    deadline, warn_at = _timers(target, now)
    forced = _moved(spec, session, target.name, deadline, warn_at, now)
    return Result(forced, (Arm(deadline, warn_at),) + ((End("final"),) if target.final else ()))


def interrupted(rest: Sequence[Effect]) -> tuple[Effect, ...]:
    """What still happens of a step whose action was cut short, given the effects after that
    action: the step stays committed and its later actions do not run, but its `End` does
    (a step into a final state still ends the session). `Arm` always precedes the actions."""
    return tuple(e for e in rest if type(e) is End)


def _moved(spec: Spec, session: Session, state: str, deadline: float | None,
           warn_at: float | None, now: float) -> Session:
    history = session.history
    if state != session.state or len(history) == 0:
        history = (*history[1 - spec.history_limit:], state) if spec.history_limit > 1 else (state,)
    return _new(Session, (session.key, session.spec, state, session.data, deadline, warn_at,
                          session.generation + 1, history, session.started, now, session.id))


_DISARM = Arm(None, None)


def _go(spec: Spec, session: Session, state: State, target: Target, action: Action | None,
        what: str, stop_reason: str, now: float, reset_timeout: bool) -> Result:
    effects: list[Effect]
    if target is KEEP:
        if not reset_timeout or state.timeout is None:
            same = _new(Session, (session.key, session.spec, session.state, session.data,
                                  session.deadline, session.warn_at, session.generation,
                                  session.history, session.started, now, session.id))
            return Result(same, (Run(action, what),) if action is not None else ())
        deadline, warn_at = _timers(state, now)
        arm = _new(Arm, (deadline, warn_at))
        return _new(Result, (_moved(spec, session, session.state, deadline, warn_at, now),
                             (arm, _new(Run, (action, what))) if action is not None else (arm,),
                             True))
    if target is STOP:
        if state.exit is None and action is None:  # most timeouts: built the fast way
            return _new(Result, (_moved(spec, session, session.state, None, None, now),
                                 (_DISARM, _new(End, (stop_reason,))), True))
        effects = [_DISARM]
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
    if spec.uses_back:
        effects.append(Run(_snapshot_action(spec.back_limit), "enter"))
    if new.final:
        effects.append(End("final"))
    return Result(_moved(spec, session, target, deadline, warn_at, now), tuple(effects))


# -- restore: a stored session meets the spec of a process started again ---------------------
@attrs.frozen
class Policy:
    """What `Engine.restore` does with a spec's stored sessions.

    - `discard_after`: a session whose deadline passed more than this many seconds
      ago is dropped without running its timeout (None: always fire it).
    - `rename`: old state name -> new state name, for states renamed in a new version.
    - `on_missing`: a stored state the spec no longer has (and `rename` does not map):
      "end" (send `end_message` to the key, drop the session) or "reset" (start the
      spec again on the key, with the stored data).
    """

    discard_after: float | None = None
    rename: Mapping[str, str] = attrs.field(factory=dict, converter=dict)
    on_missing: str = attrs.field(default="end")
    end_message: str | None = "This conversation was ended: the bot was updated."

    @on_missing.validator
    def _check(self, _attr: object, value: str) -> None:
        if value not in ("end", "reset"):
            raise ValueError(f"Policy.on_missing must be 'end' or 'reset', got {value!r}")


@attrs.frozen
class Decision:
    """`keep`/`moved`: make `session` live (`moved`: it changed, write it back);
    `drop`: delete it; `end`: delete it and send `message`; `reset`: start the spec again
    on the key with `session.data` (its record is replaced, never deleted first).
    `why` is for the log."""

    kind: Literal["keep", "moved", "drop", "end", "reset"]
    session: Session
    why: str
    message: str | None = None


def restore(spec: Spec, session: Session, same_version: bool, policy: Policy,
            now: float) -> Decision:
    """What becomes of a stored `session` of `spec` at start-up (`same_version`: it was saved
    by a spec of the same shape). Still valid: it comes back as it was, deadline included (a
    deadline that passed while the process was down fires at once, unless
    `policy.discard_after` says it is too old). In a state the spec no longer has: `policy`
    renames it (a `Force` into the new state), starts it again, or ends it with a message."""
    state = spec.by_name.get(session.state)
    if state is None:
        new_name = policy.rename.get(session.state)
        if new_name is not None and new_name in spec.by_name:
            if spec.by_name[new_name].final:
                return Decision("drop", session, f"state {session.state!r} was renamed to "
                                f"final state {new_name!r}")
            moved = step(spec, session, Force(new_name), now).session
            return Decision("moved", moved, f"state {session.state!r} renamed to {new_name!r}")
        why = f"spec {spec.name!r} has no state {session.state!r} any more"
        if policy.on_missing == "reset":
            return Decision("reset", session, why)
        return Decision("end", session, why, policy.end_message)
    if state.final:
        return Decision("drop", session, f"state {state.name!r} is final in this version")
    if not same_version and state.timeout is None and (session.deadline or session.warn_at) \
            is not None:
        # The new version dropped this state's timeout: do not fire the old one.
        return Decision("moved", step(spec, session, SetDeadline(None), now).session,
                        f"state {state.name!r} has no timeout in this version")
    if (policy.discard_after is not None and session.deadline is not None
            and now - session.deadline > policy.discard_after):
        return Decision("drop", session, f"its timeout fell due {now - session.deadline:g} s "
                        f"ago, more than the policy's {policy.discard_after:g} s")
    return Decision("keep", session, "")


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


# -- BACK: the previous state, with the data it was entered with ------------------------------
@functools.cache
def _snapshot_action(limit: int) -> Action:
    """The action a spec that uses BACK runs last on every entry: it records the state and a
    copy of the data as they are once the entry's actions ran (at most `limit` entries)."""
    def back_snapshot(ctx: Context) -> None:
        data = ctx.data
        stack = data.get(BACK_KEY)
        if not isinstance(stack, list):
            stack = []
        stack.append([ctx.state, {k: copy.deepcopy(v) for k, v in data.items()
                                  if k != BACK_KEY}])
        del stack[:-limit]
        data[BACK_KEY] = stack

    return back_snapshot


def _back(spec: Spec, session: Session, state: State, t: On, now: float) -> Result:
    """`t` goes BACK: to the state entered before the current one (the snapshots above it,
    of this state, are dropped), its data restored as it was once that entry's actions had
    run, then entered as usual (enter action, timeout). Nothing before: `spec.nothing_back`
    is answered and the session stays as it is."""
    stack = session.data.get(BACK_KEY)
    entries: list[Any] = stack if isinstance(stack, list) else []
    i = len(entries)
    while i > 0 and _entry_state(entries[i - 1]) == session.state:
        i -= 1
    previous = _entry_state(entries[i - 1]) if i > 0 else None
    if previous is None or previous not in spec.by_name or spec.by_name[previous].final:
        return _go(spec, session, state, KEEP, _say(spec.nothing_back), "action", "stop", now,
                   False)
    snapshot = entries[i - 1][1]
    rest = entries[:i - 1]

    def back_restore(ctx: Context) -> None:
        data = ctx.data
        data.clear()
        data.update(copy.deepcopy(snapshot))
        data[BACK_KEY] = [list(e) for e in rest]

    result = _go(spec, session, state, previous, t.action, "action", "stop", now, True)
    effects = list(result.effects)
    at = 1 + (state.exit is not None) + (t.action is not None)  # after Arm, exit, action
    effects.insert(at, Run(back_restore, "action"))
    return Result(result.session, tuple(effects))


def _entry_state(entry: object) -> str | None:
    if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) \
            and isinstance(entry[1], dict):
        return entry[0]
    return None


@functools.cache
def _say(text: str) -> Action:
    def say(ctx: Context) -> None:
        ctx.reply(text)

    say.__name__ = "nothing_back"
    return say
