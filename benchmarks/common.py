"""Measuring helpers shared by every scenario (standard library only).

A scenario module is run as `python -m benchmarks.scenarios.<system> --workload W --size N
--events E --reps R` in its own process; it prints one JSON object as the last line of
its stdout (see `emit`). Timings are wall clock (`time.perf_counter`), GC left as the
system under test leaves it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = [
    "BATCH",
    "Args",
    "Heartbeat",
    "emit",
    "framework_main",
    "framework_smoke",
    "gc_state",
    "parse",
    "rss_bytes",
    "seeded",
    "summary",
    "timed",
    "timed_async",
]

MARK = "BENCH-RESULT "


class Args(argparse.Namespace):
    workload: str
    size: int
    events: int
    reps: int
    budget: float
    mode: str


def parse(argv: Sequence[str] | None = None, *, workloads: Sequence[str],
          modes: Sequence[str] = ("",)) -> Args:
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True, choices=list(workloads))
    p.add_argument("--size", type=int, required=True, help="live sessions")
    p.add_argument("--events", type=int, default=20_000, help="events per repetition (at most)")
    p.add_argument("--budget", type=float, default=1.0,
                   help="seconds per repetition (at most; at least one batch runs)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions after set-up")
    p.add_argument("--mode", default=modes[0], choices=list(modes), help="variant")
    return p.parse_args(argv, namespace=Args())


BATCH = 100
"""Events between two yields to the event loop: work a system defers to the loop (timer
tasks it creates, callbacks) then runs inside the timed window, as it would in a bot."""


async def timed_async(one: Callable[[Any], Awaitable[Any]], events: Sequence[Any],
                      limit: int, budget: float) -> tuple[int, float]:
    """Feed events (cycling) to `one` in batches until `limit` events or `budget` seconds;
    returns (events fed, seconds). The loop gets a turn after every batch and at the end."""
    n = len(events)
    done = 0
    clock = time.perf_counter
    t0 = clock()
    while done < limit:
        for i in range(done, min(done + BATCH, limit)):
            await one(events[i % n])
        done = min(done + BATCH, limit)
        await asyncio.sleep(0)
        if clock() - t0 >= budget:
            break
    await asyncio.sleep(0)
    return done, clock() - t0


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and spread (min, max) of per-repetition values."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class Heartbeat:
    """Measures the longest time the event loop did not get to a 1 ms ticker (a blocked loop),
    counted from entering the block, so a loop that never yields shows its whole length."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.max_gap = max(self.max_gap, now - self._last)
            self._last = now
            await asyncio.sleep(0.001)
            self._last += 0.001  # the sleep itself is not a block

    def __enter__(self) -> Heartbeat:
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._task = loop.create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        # The ticker may not have run since a block just ended: that block counts too.
        gap = asyncio.get_running_loop().time() - self._last
        self.max_gap = max(self.max_gap, gap)


def seeded(seed: int = 8) -> random.Random:
    return random.Random(seed)


def rss_bytes() -> int:
    """Resident set size now (Linux /proc), falling back to the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gc_state() -> str:
    return "on" if gc.isenabled() else "off"


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def emit(**result: Any) -> None:
    """Print the scenario's result as the last line of stdout, with the interpreter it ran on."""
    result.setdefault("python", platform.python_version())
    result.setdefault("gc", gc_state())
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


PerEvent = Callable[[str, int, int, int, float, str], Awaitable[dict[str, Any]]]
Memory = Callable[[int, str], Awaitable[dict[str, Any]]]


async def framework_smoke(modes: Sequence[str], per_event: PerEvent, memory: Memory,
                          between: Callable[[], object] = lambda: None) -> dict[str, Any]:
    """A bot framework's scenario, every mode and workload once at a tiny size, in one
    process (the test suite's check); `between` runs before each job (to reset the
    framework's global state). Mode "bare" has no sessions: only its ordinary messages."""
    out: dict[str, Any] = {}
    for mode in modes:
        between()
        out[f"ordinary_{mode}"] = await per_event("ordinary", 3, 20, 1, 0.05, mode)
        if mode != "bare":
            between()
            out[f"deliver_{mode}"] = await per_event("deliver", 3, 20, 1, 0.05, mode)
            between()
            out[f"memory_{mode}"] = await memory(10, mode)
    between()
    return out


def framework_main(system: str, modes: Sequence[str], per_event: PerEvent, memory: Memory,
                   smoke: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """The command line of a bot framework's scenario (deliver, ordinary, memory, smoke)."""
    args = parse(workloads=("deliver", "ordinary", "memory", "smoke"), modes=modes)
    if args.workload == "memory":
        result = asyncio.run(memory(args.size, args.mode))
    elif args.workload == "smoke":
        result = asyncio.run(smoke())
    else:
        result = asyncio.run(per_event(args.workload, args.size, args.events, args.reps,
                                       args.budget, args.mode))
    emit(system=system, workload=args.workload, mode=args.mode, size=args.size, **result)
