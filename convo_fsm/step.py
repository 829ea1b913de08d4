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
from typing import Any, Final, Literal, NamedTuple, TypeAlias

import attrs

from convo_fsm.context import Context
from convo_fsm.session import Session
from convo_fsm.spec import (
    ANY,
    BACK,
    BACK_KEY,
    DELEGATE,
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
                sid: int = 0, _table_only: bool = False) -> Result:
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
    if state.call is not None and not _table_only:  # it starts in a sub-conversation
        return _call_new(spec, session, Result(session, tuple(effects)), now)
    return Result(session, tuple(effects))


def _first_passing(candidates: Sequence[On], make_ctx: Callable[[], Context],
                   why_sync: str) -> On | None:
    """The guard rule where guards must be sync: the first candidate with no guard or a
    guard that passes (the context made only if a guard is called); an async guard is a
    `TypeError` saying `why_sync`."""
    ctx = None
    for t in candidates:
        if t.guard is None:
            return t
        if t.guard_is_async:
            raise TypeError(f"guard {t.guard_name} is async: {why_sync}")
        if ctx is None:
            ctx = make_ctx()
        if t.guard(ctx):
            return t
    return None


def choose(spec: Spec, session: Session, name: str, event: Any, now: float) -> On | None:
    """The first candidate whose (sync) guard passes, or None."""
    candidates = spec.lookup(session.state, name)
    if not candidates or candidates[0].guard is None:  # most steps: no guard to call
        return candidates[0] if candidates else None
    return _first_passing(candidates, lambda: Context(session, event, name, now),
                          "use the Engine, or pass Input.chosen")


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
         now: float, _table_only: bool = False) -> Result:
    """Apply one input to `session`; return the new session and the effects to perform."""
    if spec.calls and not _table_only:  # sub-conversations: see "calls" below
        if type(event) is Input:
            fast = _fast_child(spec, session, event, now)
            if fast is not None:
                return fast
        return _call_step(spec, session, event, now)
    kind = type(event)
    if kind is Input:  # an event (the per-event path: the first test)
        state = spec.by_name[session[2]]  # (session.state)
        t = event.chosen if event.chosen is not None else choose(  # type: ignore[union-attr]
            spec, session, event.name, event.event, now)  # type: ignore[union-attr]
        if t is None:
            return Result(session, (), handled=False)
        target = t.target
        if target is BACK:
            return _back(spec, session, state, t, now)
        return _go(spec, session, state, target, t.action, "action", "stop", now,
                   t.reset_timeout)
    if kind is Force:
        return _force(spec, session, event.state, now)  # type: ignore[union-attr]
    if kind is SetDeadline:
        deadline = check_deadline(event.deadline, now)  # type: ignore[union-attr]
        return _new(Result, (_retimed(session, deadline, None, now),
                             (_new(Arm, (deadline, None)),), True))
    state = spec.by_name[session.state]
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
    """`session` in `state` with new deadlines (its generation moves on); a new state joins
    its history."""
    key, name, was, data, _, _, generation, history, started, _, sid = session
    if state == was:
        return _retimed(session, deadline, warn_at, now)
    history = (*history[1 - spec.history_limit:], state) if spec.history_limit > 1 else (state,)
    return _new(Session, (key, name, state, data, deadline, warn_at, generation + 1, history,
                          started, now, sid))


def _retimed(session: Session, deadline: float | None, warn_at: float | None,
             now: float) -> Session:
    """`session` in the same state with new deadlines (its generation moves on); its history
    stays (a restored session without one gets its state)."""
    key, name, state, data, _, _, generation, history, started, _, sid = session
    return _new(Session, (key, name, state, data, deadline, warn_at, generation + 1,
                          history or (state,), started, now, sid))


_DISARM = Arm(None, None)
_ENDS = {reason: End(reason) for reason in ("final", "stop", "timeout")}  # shared: immutable


def _go(spec: Spec, session: Session, state: State, target: Target, action: Action | None,
        what: str, stop_reason: str, now: float, reset_timeout: bool) -> Result:
    effects: list[Effect]
    if target is KEEP:
        timeout = state.timeout
        if not reset_timeout or timeout is None:
            same = _new(Session, (*session[:9], now, session[10]))  # (only `updated` moves)
            return _new(Result, (same, (_new(Run, (action, what)),) if action is not None
                                 else (), True))
        due = now + timeout.after  # (_timers, inline: the per-event path)
        warn = None if timeout.warn_before is None else due - timeout.warn_before
        arm = _new(Arm, (due, warn))
        return _new(Result, (_retimed(session, due, warn, now),
                             (arm, _new(Run, (action, what))) if action is not None else (arm,),
                             True))
    if target is STOP:
        if state.exit is None and action is None:  # most timeouts: built the fast way
            return _new(Result, (_moved(spec, session, session.state, None, None, now),
                                 (_DISARM, _ENDS[stop_reason]), True))
        effects = [_DISARM]
        if state.exit is not None:
            effects.append(Run(state.exit, "exit"))
        if action is not None:
            effects.append(Run(action, what))
        effects.append(_ENDS[stop_reason])
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
        effects.append(_ENDS["final"])
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


# -- calls: sub-conversations -----------------------------------------------------------------
# A session in a calling state (`State(call=Call(child, ...))`) runs a stack of children. The
# stack lives in the root session's data under CALLS_KEY (so every store persists it): one
# frame per child, {"spec", "state", "data", "deadline", "warn_at", "caller"}, where "caller"
# is the calling level's own [deadline, warn_at] when its call's timeout keeps running. The
# root session's deadline and warning are the earliest of the stack's. Each step rebuilds
# the levels, applies the input at the level it concerns (with that level's own table, data
# and classifier), and settles: a level that ends gives its parent the `on_end` transition; a
# level that enters a calling state starts its child. The frames are written back by the
# first action of the step (data changes happen in actions, as everywhere else).
CALLS_KEY: Final = "__calls__"


class _Level(NamedTuple):
    spec: Spec
    state: str
    data: dict[str, Any]
    deadline: float | None
    warn_at: float | None


def _call_of(level: _Level) -> Any:
    return level.spec.by_name[level.state].call


def _levels(spec: Spec, session: Session) -> list[_Level]:
    """The root level, then each running child (frames that no longer fit are dropped)."""
    frames = session.data.get(CALLS_KEY)
    root = _Level(spec, session.state, session.data, session.deadline, session.warn_at)
    if not frames or not isinstance(frames, list):
        return [root]
    levels = [root]
    for frame in frames:
        call = _call_of(levels[-1])
        if (call is None or not isinstance(frame, dict) or frame.get("spec") != call.spec.name
                or frame.get("state") not in call.spec.by_name):
            break
        caller = frame.get("caller")  # the calling level's own timers (when they run)
        if call.timeout == "running" and isinstance(caller, list) and len(caller) == 2:
            levels[-1] = levels[-1]._replace(deadline=caller[0], warn_at=caller[1])
        else:
            levels[-1] = levels[-1]._replace(deadline=None, warn_at=None)
        levels.append(_Level(call.spec, frame["state"], frame["data"], frame.get("deadline"),
                             frame.get("warn_at")))
    if len(levels) == 1:
        return [root]
    return levels


def _frames(levels: Sequence[_Level]) -> list[dict[str, Any]]:
    out = []
    for i in range(1, len(levels)):
        level, caller = levels[i], levels[i - 1]
        running = _call_of(caller).timeout == "running"
        out.append({"spec": level.spec.name, "state": level.state, "data": level.data,
                    "deadline": level.deadline, "warn_at": level.warn_at,
                    "caller": [caller.deadline, caller.warn_at] if running else None})
    return out


def _earliest(levels: Sequence[_Level]) -> tuple[float | None, float | None]:
    """The stack's next deadline and warning. A warning not before that deadline is left
    for later (it stays in its level): the session's warning always comes before its
    deadline, as in a single spec."""
    deadlines = [lv.deadline for lv in levels if lv.deadline is not None]
    warnings = [lv.warn_at for lv in levels if lv.warn_at is not None]
    deadline = min(deadlines) if deadlines else None
    warn_at = min(warnings) if warnings else None
    if warn_at is not None and deadline is not None and warn_at >= deadline:
        warn_at = None
    return deadline, warn_at


def _view(level: _Level, session: Session) -> Session:
    return _new(Session, (session.key, level.spec.name, level.state, level.data,
                          level.deadline, level.warn_at, session.generation,
                          _first_history(level.state), session.started, session.updated,
                          session.id))


def _in_level(action: Action, view: Session) -> Action:
    """`action` run with a context of its own level: its state, its data."""
    def in_call(ctx: Context) -> Any:
        return action(Context(view, ctx.event, ctx.name, ctx.now,
                              ctx._outlet))

    in_call.__name__ = getattr(action, "__name__", "action")
    return in_call


def _write_frames(frames: list[dict[str, Any]]) -> Action:
    def call_stack(ctx: Context) -> None:
        if frames:
            ctx.data[CALLS_KEY] = frames
        else:
            ctx.data.pop(CALLS_KEY, None)

    return call_stack


def _merge(parent: dict[str, Any], child: dict[str, Any], key: str | None) -> Action:
    def merge_child_data(ctx: Context) -> None:
        if key is None:
            parent.update(child)
        else:
            parent[key] = child

    return merge_child_data


class _Settle:
    """The work of one step on a stack: levels as they become, effects in order."""

    def __init__(self, session: Session, levels: list[_Level], now: float) -> None:
        self.session, self.levels, self.now = session, levels, now
        self.runs: list[Effect] = []
        self.root: Session | None = None  # the root level's new session, if it stepped
        self.end: str | None = None
        self.actions = True

    def effects_of(self, k: int, result: Result) -> str | None:
        """Take level `k`'s step result: its new state and timers, its actions (in its own
        context); the End reason if the level ended."""
        new = result.session
        level = self.levels[k]
        self.levels[k] = level._replace(state=new.state, deadline=new.deadline,
                                        warn_at=new.warn_at)
        if k == 0:
            self.root = new
        view = _view(self.levels[k], self.session)
        ended = None
        for e in result.effects:
            if type(e) is Run:
                if self.actions:
                    self.runs.append(e if k == 0 else _new(Run, (_in_level(e.action, view),
                                                                  e.what)))
            elif type(e) is End:
                ended = e.reason
        return ended

    def apply(self, k: int, result: Result, stays: bool) -> None:
        """Level `k` stepped: unless it stays (KEEP), the children below it end; then its
        ending or its entry into a calling state is settled."""
        if not stays:
            del self.levels[k + 1:]
        ended = self.effects_of(k, result)
        self.after(k, ended)

    def after(self, k: int, ended: str | None) -> None:
        if ended is not None:
            self.ended(k, ended)
            return
        level = self.levels[k]
        call = _call_of(level)
        if call is not None and len(self.levels) == k + 1:
            self.start_child(k, call)

    def start_child(self, k: int, call: Any) -> None:
        level = self.levels[k]
        if call.timeout == "paused":
            self.levels[k] = level._replace(deadline=None, warn_at=None)
        seed = level.data.get(call.data_key) if call.data_key is not None else None
        data = copy.deepcopy(seed) if isinstance(seed, dict) else {}
        first = new_session(call.spec, self.session.key, self.now, data, self.session.id,
                            True)
        self.levels.append(_Level(call.spec, first.session.state, data,
                                  first.session.deadline, first.session.warn_at))
        ended = self.effects_of(k + 1, first)
        self.after(k + 1, ended)

    def ended(self, k: int, reason: str) -> None:
        """Level `k` ended with `reason`: the whole session (k = 0), or its parent's `on_end`
        transition (its data merged first); an ending the parent does not map ends it too."""
        del self.levels[k + 1:]
        if k == 0:
            self.end = reason
            return
        child = self.levels.pop()
        parent = self.levels[k - 1]
        call = _call_of(parent)
        key = child.state if reason == "final" else reason
        target = call.on_end.get(key, call.on_end.get("*"))
        if self.actions:
            self.runs.append(Run(_merge(parent.data, child.data, call.data_key), "action"))
        if target is None:
            self.ended(k - 1, reason)
            return
        state = parent.spec.by_name[parent.state]
        result = _go(parent.spec, _view(parent, self.session), state, target, None, "action",
                     "stop", self.now, True)
        self.apply(k - 1, result, False)

    def due_warnings(self) -> None:
        """A level's warning whose time has come by the end of this step (a calling level's
        running one, met by its child's new timers) is sent in this step, not armed in the
        past."""
        while self.end is None:
            _, warn_at = _earliest(self.levels)
            if warn_at is None or warn_at > self.now:
                return
            k = next(i for i, lv in enumerate(self.levels) if lv.warn_at == warn_at)
            level = self.levels[k] = self.levels[k]._replace(warn_at=None)
            timeout = level.spec.by_name[level.state].timeout
            warn = None if timeout is None else timeout.warn
            if warn is not None and self.actions:
                self.runs.append(Run(warn if k == 0 else _in_level(
                    warn, _view(level, self.session)), "warn"))

    def result(self, spec: Spec, handled: bool = True) -> Result:
        session = self.session
        self.due_warnings()
        deadline, warn_at = _earliest(self.levels)
        root = self.root
        state = self.levels[0].state
        history = session.history if root is None else root.history
        new = _new(Session, (session.key, session.spec, state, session.data, deadline, warn_at,
                             session.generation + 1, history, session.started, self.now,
                             session.id))
        effects: list[Effect] = [_new(Arm, (deadline, warn_at))]
        if self.actions:
            effects.append(_new(Run, (_write_frames(_frames(self.levels)), "action")))
        effects += self.runs
        if self.end is not None:
            effects[0] = Arm(None, None)
            new = new._replace(deadline=None, warn_at=None)
            effects.append(End(self.end))
        return _new(Result, (new, tuple(effects), handled))


def _choose_in(spec: Spec, level: _Level, session: Session, name: str, event: Any,
               now: float) -> On | None:
    return _first_passing(spec.own_lookup(level.state, name),
                          lambda: Context(_view(level, session), event, name, now),
                          "a called spec's guards are sync")


def _call_step(spec: Spec, session: Session, event: Input | TimerFired | Force | SetDeadline,
               now: float) -> Result:
    kind = type(event)
    if kind is Input:  # (step tried the short path first)
        assert isinstance(event, Input)
        return _call_input(spec, session, _levels(spec, session), event, now)
    levels = _levels(spec, session)
    if kind is TimerFired:
        assert isinstance(event, TimerFired)
        return _call_timer(spec, session, levels, event, now)
    if kind is SetDeadline and len(levels) > 1:
        # A deadline set from outside is the running conversation's: the innermost level's
        # (its warning dropped); the session's timers are again the earliest of the stack's,
        # so a level's own older deadline can never come back after it.
        deadline = check_deadline(event.deadline, now)  # type: ignore[union-attr]
        levels[-1] = levels[-1]._replace(deadline=deadline, warn_at=None)
        session.data[CALLS_KEY] = _frames(levels)  # (written at once, as Force does)
        first, warn = _earliest(levels)
        moved = _new(Session, (session.key, session.spec, session.state, session.data,
                               first, warn, session.generation + 1, session.history,
                               session.started, now, session.id))
        return _new(Result, (moved, (_new(Arm, (first, warn)),), True))
    # Force (and SetDeadline with no child running) act on the root session; a forced
    # calling state starts its child with no actions run, as a forced entry runs none.
    result = step(spec, session, event, now, True)
    work = _Settle(session, [_Level(spec, result.session.state, session.data,
                                    result.session.deadline, result.session.warn_at)], now)
    work.root = result.session
    if kind is Force:
        # A Force runs no actions, so the new stack is written into the data at once.
        work.actions = False
        work.after(0, None)
        settled = work.result(spec)
        frames = _frames(work.levels)
        if frames:
            session.data[CALLS_KEY] = frames
        else:
            session.data.pop(CALLS_KEY, None)
        ended = tuple(e for e in result.effects if type(e) is End)
        return Result(settled.session._replace(generation=result.session.generation),
                      (settled.effects[0], *ended))
    return result


def _fast_child(spec: Spec, session: Session, event: Input, now: float) -> Result | None:
    """The common case, on a short path: one child, which takes the event with a transition
    that stays (KEEP) or moves to a plain state, with no exit or enter action to run (no
    ending, no call, no BACK). The running frame is data, updated in place by the step as
    actions update data. None: take the general path."""
    frames = session.data.get(CALLS_KEY)
    if type(frames) is not list or len(frames) != 1:
        return None
    call = spec.by_name[session.state].call
    if call is None or call.unwind:
        return None
    frame = frames[0]
    child = call.spec
    try:  # (frames are written by this module with every key; anything else: general path)
        if frame["spec"] != child.name:
            return None
        cstate = child.by_name.get(frame["state"])
        caller = frame["caller"]
    except (KeyError, TypeError):
        return None
    if cstate is None:
        return None
    raw = event.event
    name = event.name if child.classify is spec.classify else child.classify(raw)
    table = child.own_tables[cstate.name]
    candidates = table.get(name)
    if candidates is None:
        candidates = table[ANY]
    if not candidates:
        return None
    t = candidates[0]
    if t.guard is not None:
        ctx = Context(_new(Session, (session.key, child.name, cstate.name, frame["data"],
                                     frame.get("deadline"), frame.get("warn_at"),
                                     session.generation, _first_history(cstate.name),
                                     session.started, session.updated, session.id)),
                      raw, name, now)
        for c in candidates:
            if c.guard_is_async:
                return None
            if c.guard is None or c.guard(ctx):
                t = c
                break
        else:
            return None
    target = t.target
    if target is KEEP:
        if t.reset_timeout and cstate.timeout is not None:
            deadline, warn_at = _timers(cstate, now)
        else:
            deadline, warn_at = frame.get("deadline"), frame.get("warn_at")
        new_state = cstate.name
    elif type(target) is str:
        entered = child.by_name[target]
        if (entered.final or entered.call is not None or entered.enter is not None
                or cstate.exit is not None or child.uses_back):
            return None
        deadline, warn_at = _timers(entered, now)
        new_state = target
    else:
        return None
    frame["state"], frame["deadline"], frame["warn_at"] = new_state, deadline, warn_at
    if caller is not None and call.timeout == "running":
        if caller[0] is not None and (deadline is None or caller[0] < deadline):
            deadline = caller[0]
        if caller[1] is not None and (warn_at is None or caller[1] < warn_at):
            warn_at = caller[1]
        if warn_at is not None and deadline is not None and warn_at >= deadline:
            warn_at = None  # (as _earliest: a warning always comes before the deadline)
    arm = _new(Arm, (deadline, warn_at))
    action = t.action
    root = _new(Session, (session.key, session.spec, session.state, session.data, deadline,
                          warn_at, session.generation + 1, session.history, session.started,
                          now, session.id))
    if action is None:
        return _new(Result, (root, (arm,), True))
    return _new(Result, (root, (arm, _new(Run, (_in_frame(action, frame, child.name),
                                                "action"))), True))


def _in_frame(action: Action, frame: dict[str, Any], spec_name: str) -> Action:
    """`action` run in the context of the running child `frame` (its state, its data)."""
    def in_call(ctx: Context) -> Any:
        s = ctx.session
        view = _new(Session, (s.key, spec_name, frame["state"], frame["data"],
                              frame.get("deadline"), frame.get("warn_at"), s.generation,
                              _first_history(frame["state"]), s.started, s.updated, s.id))
        return action(Context(view, ctx.event, ctx.name, ctx.now,
                              ctx._outlet))

    return in_call


def _call_input(spec: Spec, session: Session, levels: list[_Level], event: Input,
                now: float) -> Result:
    raw, name = event.event, event.name
    work = _Settle(session, levels, now)
    if len(levels) == 1:  # not in a sub-conversation: the root's own table
        t = event.chosen
        if t is None or t is DELEGATE:
            t = _choose_in(spec, levels[0], session, name, raw, now)
        if t is None:
            return Result(session, (), handled=False)
        result = step(spec, session, _new(Input, (name, raw, t)), now, True)
        if not result.handled:
            return result
        work.apply(0, result, t.target is KEEP)
        return work.result(spec)
    # An event a call unwinds goes to its calling level, ending the stack below.
    for k in range(len(levels) - 1):
        if name_at(levels, k, name, raw) in _call_of(levels[k]).unwind:
            t = _choose_in(levels[k].spec, levels[k], session, name_at(levels, k, name, raw),
                           raw, now)
            if t is not None:
                return _take(work, k, t, name_at(levels, k, name, raw), raw, now, spec,
                             unwind=True)
    for k in range(len(levels) - 1, -1, -1):
        try:
            level_name = name_at(levels, k, name, raw)
        except Exception:  # this level does not understand the event: the next one may
            continue
        t = _choose_in(levels[k].spec, levels[k], session, level_name, raw, now)
        if t is not None:
            return _take(work, k, t, level_name, raw, now, spec)
    return Result(session, (), handled=False)


def name_at(levels: Sequence[_Level], k: int, name: str, raw: Any) -> str:
    """The event's name at level `k`: the root's is the engine's; a child names it with its
    own classifier."""
    return name if k == 0 else levels[k].spec.classify(raw)


def _take(work: _Settle, k: int, t: On, name: str, raw: Any, now: float, spec: Spec,
          unwind: bool = False) -> Result:
    level = work.levels[k]
    state = level.spec.by_name[level.state]
    view = _view(level, work.session)
    if t.target is BACK:
        result = _back(level.spec, view, state, t, now)
        stays = result.session.state == level.state and not unwind
    else:
        result = _go(level.spec, view, state, t.target, t.action, "action", "stop", now,
                     t.reset_timeout)
        stays = t.target is KEEP and not unwind
    work.apply(k, result, stays)  # (unwound to a KEEP: the calling state starts a new child)
    return work.result(spec)


def _call_timer(spec: Spec, session: Session, levels: list[_Level], event: TimerFired,
                now: float) -> Result:
    if len(levels) == 1:
        result = step(spec, session, event, now, True)
        if not result.handled or event.warning:
            return result
        work = _Settle(session, levels, now)
        timeout = spec.by_name[session.state].timeout
        stays = timeout is not None and not timeout.when and timeout.target is KEEP
        work.apply(0, result, stays)
        return work.result(spec)
    deadline, warn_at = _earliest(levels)
    work = _Settle(session, levels, now)
    if event.warning:
        if deadline is not None and deadline <= now:
            return Result(session, (), handled=False)  # late: the timeout comes first
        k = next((i for i, lv in enumerate(levels) if lv.warn_at is not None
                  and lv.warn_at == warn_at), None)
        if k is None:
            return Result(session, (), handled=False)
        level = levels[k]
        timeout = level.spec.by_name[level.state].timeout
        work.levels[k] = level._replace(warn_at=None)
        warn = None if timeout is None else timeout.warn
        if warn is not None:
            view = _view(work.levels[k], session)
            work.runs.append(Run(warn if k == 0 else _in_level(warn, view), "warn"))
        next_deadline, next_warning = _earliest(work.levels)
        if next_warning is None and next_deadline == deadline:
            # As a single spec's warning: the deadline stands (same generation, no Arm).
            frames = _frames(work.levels)
            effects: list[Effect] = [Run(_write_frames(frames), "action"), *work.runs]
            return Result(session._replace(warn_at=None, updated=now), tuple(effects))
        return work.result(spec)
    k = next((i for i, lv in enumerate(levels) if lv.deadline is not None
              and lv.deadline == deadline), None)
    if k is None:  # a deadline set from outside (SetDeadline): the whole session times out
        work.levels = work.levels[:1]
        work.ended(0, "timeout")
        return work.result(spec)
    level = levels[k]
    view = _view(level, session)
    result = step(level.spec, view, TimerFired(False), now, True)
    timeout = level.spec.by_name[level.state].timeout
    stays = timeout is not None and timeout.target is KEEP and not timeout.when \
        and k == len(levels) - 1
    work.apply(k, result, stays)
    return work.result(spec)


def _call_new(spec: Spec, session: Session, first: Result, now: float) -> Result:
    work = _Settle(session, [_Level(spec, session.state, session.data, session.deadline,
                                    session.warn_at)], now)
    work.apply(0, first, False)
    result = work.result(spec)
    return result._replace(session=result.session._replace(generation=0))
