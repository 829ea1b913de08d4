"""The effect interpreter: the one place where a step's effects are performed.

Every path that applies a step (an event, a start, a timer, `force`, `set_deadline`,
`restore`) hands its effects here, in order:

- `Arm`: the host schedules the session's timers;
- `Run`: the action is called with the step's context, unless the session has ended
  or been replaced meanwhile. An exception from it, even a `CancelledError` raised by
  a sync action, ends only this session (reason "error");
- `End`: the host ends the session (if it is still this one).

`run` performs effects synchronously up to the first action that returns an
awaitable and gives that back; `finish` awaits it (interruptibly, through the host)
and goes on. A step whose guards and actions are all synchronous therefore costs no
coroutine at all; a timer gives the rest of its step to a task instead of awaiting it,
so a slow timer action never holds up the other sessions' timers.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from types import CoroutineType
from typing import Any, Protocol

from convo_fsm.context import Context
from convo_fsm.session import Session
from convo_fsm.step import Arm, Effect, Run, interrupted

from .turns import Interrupted, Turn, current_task, done, judge

__all__ = ["Host", "Pending", "cut_short", "finish", "run"]

Pending = tuple[int, Awaitable[Any]]
"""An action that returned an awaitable: its index in the effects, and the awaitable."""


class Host(Protocol):
    """What the interpreter needs of the engine."""

    def current(self, key: str) -> Session | None: ...

    def arm(self, key: str, session: Session) -> None: ...

    def end(self, key: str, sid: int, reason: str) -> bool: ...

    def fail(self, key: str, sid: int, exc: BaseException, where: str) -> None: ...


def name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def run(host: Host, key: str, session: Session, effects: Sequence[Effect],
        ctx: Context | None, start: int = 0) -> Pending | None:
    """Perform `effects[start:]` until done (None; also when the session stopped) or until
    an action returns an awaitable (returned with its index, for `finish`)."""
    sid = session.id
    for i in range(start, len(effects)):
        effect = effects[i]
        kind = type(effect)
        if kind is Run:
            current = host.current(key)
            if current is None or current.id != sid:
                return None  # ended (or replaced) by a timer, stop() or an earlier action
            assert ctx is not None
            ctx.session = current
            action = effect.action  # type: ignore[union-attr]
            try:
                pending = action(ctx)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                host.fail(key, sid, exc, f"action {name(action)}")
                return None
            if pending is not None and (type(pending) is CoroutineType
                                        or inspect.isawaitable(pending)):
                return i, pending
        elif kind is Arm:
            host.arm(key, session)
        else:
            host.end(key, sid, effect.reason)  # type: ignore[union-attr]
    return None


def cut_short(host: Host, key: str, session: Session, effects: Sequence[Effect],
              index: int) -> None:
    """The action at `index` was cut short: what the step still does (`step.interrupted`),
    if the session is still where this step left it."""
    current = host.current(key)
    if current is None or current.id != session.id or current.state != session.state:
        return
    for effect in interrupted(effects[index + 1:]):
        host.end(key, session.id, effect.reason)  # type: ignore[union-attr]


async def finish(host: Host, key: str, session: Session, effects: Sequence[Effect],
                 ctx: Context, turn: Turn | None, pending: Pending) -> None:
    """Await the pending action (interruptibly while holding `turn`), then perform the rest
    of the effects the same way."""
    index, awaitable = pending
    n = len(effects)
    task = current_task() if turn is not None else None
    while True:
        try:
            if task is None or turn is None:
                await awaitable
            else:  # what Turns.wait does, without a coroutine between
                turn.task, turn.cancelling = task, task.cancelling()
                try:
                    await awaitable
                except asyncio.CancelledError:
                    raise judge(turn, task) from None
                finally:
                    done(turn, task)
        except Interrupted:
            cut_short(host, key, session, effects, index)
            return
        except asyncio.CancelledError:  # the caller is cancelled: the step stays committed
            cut_short(host, key, session, effects, index)
            raise
        except Exception as exc:
            host.fail(key, session.id, exc, f"action {name(effects[index].action)}")  # type: ignore[union-attr]
            return
        if index + 1 == n:
            return
        nxt = run(host, key, session, effects, ctx, index + 1)
        if nxt is None:
            return
        index, awaitable = nxt
