"""Firing timers: what the engine does with a due timer, never waiting for a key.

The clock calls `Engine.fire_due(now)`; the timers due at `now` come off the heap in
deadline order (`timers.py`) and each is stepped (`TimerFired`, `step.py`):

- on a free key at once: most timeouts run no action and cost no await at all; a timer
  action that must be awaited goes on in a task holding the key's turn, so a slow one
  never holds up the others;
- on a busy key, its place at the front of the key's inbox is reserved at once, the
  running guard or action is cut short, and the timer takes the turn in a task of its
  own: an action that swallows its cancellation delays only its own key;
- mass expiry yields to the loop every few milliseconds.
With a store, each fired timer's step is committed while it holds the turn.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from convo_fsm.context import Context
from convo_fsm.session import Session
from convo_fsm.step import Run, TimerFired, step

from .effects import Pending, cut_short, finish, run
from .timers import Entry, live
from .turns import Turn, current_task

if TYPE_CHECKING:
    from .core import Engine

__all__ = ["Firing"]

_SLICE = 0.005  # mass expiry: yield to the loop after this many seconds of firing timers
_FIRED, _DETACHED = 1, 2  # what `_fire` did with a due timer (0: nothing, it was outdated)
_FELL_DUE = (TimerFired(False), TimerFired(True))  # step's input, by `warning` (immutable)


class Firing:
    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def fire_due(self, now: float) -> int:
        """Fire every timer due at `now`, in deadline order, without ever waiting for a
        key: a busy key's running guard or action is cut short and the timer takes its
        turn in a task of its own. Returns how many were fired (or handed to a task)."""
        engine = self._engine
        fired = 0
        timers, busy = engine._timers, engine._turns.busy
        mark = time.perf_counter()
        while (entry := timers.pop_due(now)) is not None:
            key = entry[4]
            turn = busy.get(key)
            if turn is not None:
                # Its place at the front of the inbox is taken now, before the cut-short
                # work can hand the turn to the next event.
                place = engine._turns.reserve(key, turn, wants_session=True, front=True)
                engine._turns.interrupt(turn)
                engine._tasks.spawn(self._when_free(key, entry, place), "timer", key)
                fired += 1
            elif engine._store is None:
                fired += self._fire(key, entry, None) > 0
            else:
                fired += await self._fire_holding(key, entry, engine._turns.take_free(key)) > 0
            if fired & 63 == 0 and time.perf_counter() - mark > _SLICE:
                await asyncio.sleep(0)  # mass expiry: let the loop breathe
                mark = time.perf_counter()
        if timers.garbage:
            await timers.sweep()
        return fired

    async def _when_free(self, key: str, entry: Entry, place: asyncio.Future[bool]) -> None:
        engine = self._engine
        turn = await engine._turns.take(key, wants_session=True, place=place)
        if turn is None:
            return
        # Live when popped; the session may have moved on (or sent this warning) meanwhile.
        if live(engine._sessions.get(key), entry[1], entry[2], entry[3]):
            await self._fire_holding(key, entry, turn)
        else:
            engine._turns.release(key, turn)

    async def _fire_holding(self, key: str, entry: Entry, turn: Turn) -> int:
        """`_fire` with the key's turn held: the step committed to the store, then the turn
        released, unless a detached task now holds it (and does both)."""
        engine = self._engine
        got = 0  # if `_fire` raises, the turn is still released
        try:
            got = self._fire(key, entry, turn)
            if got == _FIRED and engine._store is not None:
                await engine._store.commit(key)
        finally:
            if got != _DETACHED:
                engine._turns.release(key, turn)
        return got

    def _fire(self, key: str, entry: Entry, turn: Turn | None) -> int:
        """Step a due timer whose entry is live (`timers.live`, checked as it was popped or
        once its turn came): `_FIRED`, or 0 for a warning too late to send. Its actions run
        here; if one must be awaited, the rest goes to a task that holds the key's turn
        (taken now if `turn` is None), commits and releases it: `_DETACHED`."""
        engine = self._engine
        warning = entry[3]
        session = engine._sessions[key]
        now = engine.clock.now()
        result = step(engine._specs[session.spec], session, _FELL_DUE[warning], now)
        if not result.handled:
            return 0  # a warning too late to send
        name = "warning" if warning else "timeout"
        new = result.session
        engine._commit(key, new, None, name, session.state, now)
        effects = result.effects
        ctx = None  # most timeouts run no action: no context for them
        for effect in effects:
            if type(effect) is Run:
                ctx = Context(new, None, name, now, engine.emit)
                break
        pending = run(engine, key, new, effects, ctx)
        if pending is not None:
            assert ctx is not None
            if turn is None:
                turn = engine._turns.take_free(key)
            self._detach(key, new, effects, ctx, turn, pending)
            return _DETACHED
        return _FIRED

    def _detach(self, key: str, session: Session, effects: Any, ctx: Context, turn: Turn,
                pending: Pending) -> None:
        """The rest of a timer's step, from an action that must be awaited, in a task that
        holds the turn: interruptible from now on, like any action."""
        engine = self._engine

        async def rest() -> None:
            task = current_task()
            try:
                await finish(engine, key, session, effects, ctx, turn, pending)
                if engine._store is not None:
                    await engine._store.commit(key)
            except asyncio.CancelledError:
                awaitable = pending[1]
                if asyncio.iscoroutine(awaitable):
                    awaitable.close()  # cancelled (stop, close) before it ever ran
                if not turn.cancel_requested:
                    raise
                turn.cancel_requested = False  # cut short by the engine before it started
                if task is not None:
                    task.uncancel()
                cut_short(engine, key, session, effects, pending[0])
            finally:
                if turn.task is task:
                    turn.task = None
                engine._turns.release(key, turn)

        turn.task = engine._tasks.spawn(rest(), "timer action", key)
        turn.cancelling = 0
