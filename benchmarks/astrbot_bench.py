"""AstrBot plugins three ways, on one workload, in one Python 3.12 process with real
AstrBot 4.29.3 installed: AstrBot's own `session_waiter`, convo_fsm's adapter inside real
AstrBot (`convo_fsm.adapters.astrbot`: the plugin's one import changed) and the compat
layer (`convo_fsm.compat.astrbot`, what PluginHost runs).

    .venv-astrbot/bin/python -m benchmarks.astrbot_bench --out benchmarks/astrbot.md

N sessions wait, each a plugin coroutine (a task) awaiting `waiter(event)` whose handler
calls `controller.keep(3600, reset_timeout=True)`.
- delivery: an event to one of them (random), through the routing path: AstrBot's
  `ProcessStage.process` for AstrBot and for the adapter (AstrBot's routing, which asks
  convo_fsm's router), `Runtime.dispatch` for the compat layer;
- ordinary: an event from someone with no session, the same paths;
- memory: tracemalloc bytes added per waiting session (its plugin task included), and
  asyncio tasks per session.
Medians of `--reps` runs of `--events` events; events are built before timing; each
system and size in a process of its own. Not a test: nothing is asserted. RESULTS.md
includes the table (section 9).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("ASTRBOT_ROOT", str(Path(__file__).parent / ".work" / "astrbot_root"))

from astrbot.core.pipeline.process_stage.stage import ProcessStage
from astrbot.core.utils import session_waiter as sw

from benchmarks.scenarios.astrbot import make_event  # one AstrBot event for every bench
from convo_fsm.adapters import astrbot as adapter
from convo_fsm.compat.astrbot import Runtime
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent as CompatEvent
from convo_fsm.compat.astrbot.core.utils import session_waiter as compat_sw

SYSTEMS = ("astrbot", "adapter", "compat")


def stage() -> ProcessStage:
    s = ProcessStage()
    s.ctx = SimpleNamespace(astrbot_config={"provider_settings": {"enable": False}})  # type: ignore[assignment]
    return s


class System:
    """One way of running the plugin: start N sessions, route one event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runtime = Runtime() if name == "compat" else None
        if name == "adapter":
            adapter.set_default_runtime(Runtime())
        self.stage = stage()
        waiter_of = {"astrbot": sw.session_waiter, "adapter": adapter.session_waiter,
                     "compat": compat_sw.session_waiter}[name]

        async def handler(controller: Any, event: Any) -> None:
            controller.keep(3600, reset_timeout=True)

        self.waiter = waiter_of(timeout=3600)(handler)
        self.tasks: list[asyncio.Task[Any]] = []

    def event(self, sender: str, text: str) -> Any:
        if self.name == "compat":
            return CompatEvent(text, sender, runtime=self.runtime)
        return make_event(sender, text)

    def waiting(self) -> int:
        if self.name == "astrbot":
            return len(sw.USER_SESSIONS) - 1  # (convo_fsm's router entry is there too)
        runtime = self.runtime if self.runtime is not None else adapter.default_runtime()
        return len(runtime.engine)

    async def start(self, n: int) -> None:
        async def plugin(event: Any) -> None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await self.waiter(event)

        base = self.waiting()
        self.tasks += [asyncio.create_task(plugin(self.event(f"u{i}", "/start")))
                       for i in range(n)]
        while self.waiting() < base + n:
            await asyncio.sleep(0)

    def router(self) -> Callable[[Any], Awaitable[Any]]:
        if self.name == "compat":
            assert self.runtime is not None
            return self.runtime.dispatch

        async def through_stage(event: Any) -> None:
            async for _ in self.stage.process(event):
                pass

        return through_stage

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for key in [k for k in sw.USER_SESSIONS if k != adapter.ROUTER_ID]:
            del sw.USER_SESSIONS[key]
        sw.FILTERS[:] = [f for f in sw.FILTERS if getattr(f, "convo_fsm_router", False)]
        adapter.set_default_runtime(None)


async def per_event(route: Callable[[Any], Awaitable[Any]], events: list[Any],
                    reps: int) -> float:
    runs = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        for i, e in enumerate(events):
            await route(e)
            if i % 100 == 99:
                await asyncio.sleep(0)  # the loop's turn (AstrBot's keep() timer tasks)
        runs.append((time.perf_counter() - t0) / len(events) * 1e6)
    return statistics.median(runs)


async def measure(name: str, n: int, events: int, reps: int) -> dict[str, float]:
    system = System(name)
    await system.start(n)
    import random

    rnd = random.Random(7)
    to_sessions = [system.event(f"u{rnd.randrange(n)}", "hi") for _ in range(events)]
    ordinary = [system.event(f"other{i}", "hello") for i in range(events)]
    route = system.router()
    await route(to_sessions[0])
    out = {"deliver_us": await per_event(route, to_sessions, reps),
           "ordinary_us": await per_event(route, ordinary, reps)}
    assert system.waiting() == n, (name, system.waiting(), n)
    await system.close()
    # Memory: a fresh set of sessions, measured from just before they start.
    system = System(name)
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await system.start(n)
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    out["bytes_per_session"] = (after - before) / n
    out["tasks_per_session"] = (len(asyncio.all_tasks()) - tasks_before) / n
    await system.close()
    return out


def table(results: dict[int, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| sessions | measure | AstrBot's own waiter | convo_fsm adapter in AstrBot | "
        "convo_fsm compat layer | AstrBot / adapter | AstrBot / compat |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {"deliver_us": "delivery µs/event", "ordinary_us": "ordinary message µs/event",
              "bytes_per_session": "B per waiting session (tracemalloc)",
              "tasks_per_session": "asyncio tasks per session"}
    for n, by in sorted(results.items()):
        for key, label in labels.items():
            a, b, c = (by[s][key] for s in SYSTEMS)
            fmt = "{:.2f}" if key == "tasks_per_session" else "{:,.1f}"

            def ratio(x: float, y: float) -> str:
                return f"{x / y:,.1f}x" if y else "-"

            lines.append(f"| {n:,} | {label} | {fmt.format(a)} | {fmt.format(b)} | "
                         f"{fmt.format(c)} | {ratio(a, b)} | {ratio(a, c)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--one", nargs=2, metavar=("SYSTEM", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:  # one system at one size, in this process: its result as JSON
        system, n = args.one[0], int(args.one[1])
        print("RESULT " + json.dumps(asyncio.run(measure(system, n, args.events, args.reps))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, dict[str, float]]] = {}
    for n in sizes:  # each in a fresh process: AstrBot's leftover timer tasks stay there
        for system in SYSTEMS:
            run = subprocess.run(
                [sys.executable, "-m", "benchmarks.astrbot_bench", "--one", system, str(n),
                 "--events", str(args.events), "--reps", str(args.reps)],
                capture_output=True, text=True, check=True)
            line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
            results.setdefault(n, {})[system] = json.loads(line[len("RESULT "):])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"{table(results)}\n\nPython {platform.python_version()}, AstrBot 4.29.3, "
            f"{os.cpu_count()} CPUs (load average {load:.1f} at the end); "
            f"{args.events} events x {args.reps} runs (median); "
            f"command: `{Path(sys.executable).name} -m benchmarks.astrbot_bench "
            f"{' '.join(sys.argv[1:])}`.\n")
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
