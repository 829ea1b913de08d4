"""WallClock: real time as seconds since the epoch, for sessions that outlive the process.

`AsyncioClock` reads the event loop's monotonic clock, whose zero is arbitrary and
changes with every process: a deadline stored by one process means nothing to the
next, or to another worker. `WallClock.now()` is `time.time()`, so a stored deadline
is a moment everyone agrees on; timers are still scheduled on the running loop.
"""

from __future__ import annotations

import asyncio
import time

from convo_fsm.clock import TimerOwner

__all__ = ["WallClock"]


class WallClock:
    """One `call_at` handle and at most one short-lived task per attached engine."""

    def __init__(self) -> None:
        self._handles: dict[int, tuple[float, asyncio.TimerHandle]] = {}
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._owners: dict[int, TimerOwner] = {}

    def now(self) -> float:
        return time.time()

    def attach(self, owner: TimerOwner) -> None:
        self._owners[id(owner)] = owner

    def detach(self, owner: TimerOwner) -> None:
        ident = id(owner)
        self._owners.pop(ident, None)
        handle = self._handles.pop(ident, None)
        if handle is not None:
            handle[1].cancel()
        runner = self._runners.pop(ident, None)
        if runner is not None:
            runner.cancel()

    def wake(self, owner: TimerOwner, deadline: float) -> None:
        ident = id(owner)
        if ident in self._runners:
            return  # the runner re-arms for the earliest deadline when it is done
        armed = self._handles.get(ident)
        if armed is not None:
            if armed[0] <= deadline:
                return
            armed[1].cancel()
        loop = asyncio.get_running_loop()
        # Wall time -> loop time now; a clock step later only moves when we look again.
        at = loop.time() + max(0.0, deadline - time.time())
        self._handles[ident] = (deadline, loop.call_at(at, self._due, ident))

    def _due(self, ident: int) -> None:
        self._handles.pop(ident, None)
        owner = self._owners.get(ident)
        if owner is not None and ident not in self._runners:
            self._runners[ident] = asyncio.get_running_loop().create_task(self._run(ident, owner))

    async def _run(self, ident: int, owner: TimerOwner) -> None:
        try:
            await owner.fire_due(time.time())
        finally:
            if self._runners.get(ident) is asyncio.current_task():
                del self._runners[ident]
        nxt = owner.next_deadline()
        if nxt is not None and ident in self._owners:
            self.wake(owner, nxt)
