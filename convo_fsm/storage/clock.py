"""WallClock: real time as seconds since the epoch, for sessions that outlive the process.

`AsyncioClock` reads the event loop's monotonic clock, whose zero is arbitrary and
changes with every process: a deadline stored by one process means nothing to the
next, or to another worker. `WallClock.now()` is `time.time()`, so a stored deadline
is a moment everyone agrees on; timers are still scheduled on the running loop.
"""

from __future__ import annotations

import time

from convo_fsm.clock import AsyncioClock

__all__ = ["WallClock"]


class WallClock(AsyncioClock):
    """`AsyncioClock` scheduling, with `time.time()` as the time."""

    def now(self) -> float:
        return time.time()

    def _loop_time(self, deadline: float) -> float:
        # Wall time -> loop time now; a clock step later only moves when we look again.
        return self.loop.time() + max(0.0, deadline - time.time())
