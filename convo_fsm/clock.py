"""Clocks: where the engine's `now` comes from and who fires its due timers.

The engine keeps all deadlines in one heap. A clock only tells the time and,
when told that the earliest deadline moved (`wake`), arranges for
`engine.fire_due(now)` to run then:

- `VirtualClock`: time moves only when a test calls `await clock.advance(s)`,
  which fires every due timer in deadline order, at exactly its deadline.
- `AsyncioClock`: the running loop's clock; one `loop.call_at` handle and at
  most one short-lived task per engine, never one per session.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

__all__ = ["AsyncioClock", "Clock", "TimerOwner", "VirtualClock"]


class TimerOwner(Protocol):
    def next_deadline(self) -> float | None: ...

    async def fire_due(self, now: float) -> int: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def attach(self, owner: TimerOwner) -> None: ...

    def detach(self, owner: TimerOwner) -> None: ...

    def wake(self, owner: TimerOwner, deadline: float) -> None: ...


class VirtualClock:
    """A clock for tests: nothing happens until `advance`, and then instantly."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._owners: list[TimerOwner] = []

    def now(self) -> float:
        return self._now

    def attach(self, owner: TimerOwner) -> None:
        self._owners.append(owner)

    def detach(self, owner: TimerOwner) -> None:
        with contextlib.suppress(ValueError):
            self._owners.remove(owner)

    def wake(self, owner: TimerOwner, deadline: float) -> None:
        """Nothing to arrange: `advance` asks the owners."""

    async def advance(self, seconds: float) -> int:
        """Move time forward by `seconds`, firing due timers in deadline order. Returns how many
        fired. Timers armed by the actions that run are fired too if they fall due in time."""
        if not seconds >= 0:
            raise ValueError(f"cannot advance a clock by {seconds!r} seconds")
        target = self._now + seconds
        fired = 0
        while True:
            due = [(d, i) for i, o in enumerate(self._owners)
                   if (d := o.next_deadline()) is not None and d <= target]
            if not due:
                break
            deadline, index = min(due)
            self._now = max(self._now, deadline)
            fired += await self._owners[index].fire_due(self._now)
            # Tasks woken by the firings (waiters, cancelled actions) run at this time, as
            # they would in real time, before the clock moves on.
            await _settle()
        self._now = target
        await _settle()
        return fired


async def _settle(rounds: int = 8) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


class AsyncioClock:
    """Real time from the running event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._handles: dict[int, tuple[float, asyncio.TimerHandle]] = {}
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._owners: dict[int, TimerOwner] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        now = self.loop.time
        if type(self) is AsyncioClock:
            self.now = now  # type: ignore[method-assign]  # the loop's own: one call less
        return now()

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
        self._handles[ident] = (deadline, self.loop.call_at(self._loop_time(deadline), self._due,
                                                            ident))

    def _loop_time(self, deadline: float) -> float:
        """`deadline` (this clock's time) on the loop's clock, for `call_at`."""
        return deadline

    def _due(self, ident: int) -> None:
        self._handles.pop(ident, None)
        owner = self._owners.get(ident)
        if owner is not None and ident not in self._runners:
            self._runners[ident] = self.loop.create_task(self._run(ident, owner))

    async def _run(self, ident: int, owner: TimerOwner) -> None:
        try:
            await owner.fire_due(self.now())
        finally:
            if self._runners.get(ident) is asyncio.current_task():
                del self._runners[ident]
        nxt = owner.next_deadline()
        if nxt is not None and ident in self._owners:
            self.wake(owner, nxt)
