"""The AstrBot plugin API on convo_fsm (`convo_fsm.compat.astrbot`) on workloads 1-3.

The same plugin code as the AstrBot scenario with only the import prefix changed: a
`@session_waiter(timeout=60)` handler calling `controller.keep(60, reset_timeout=True)`, its
plugin coroutine awaiting `waiter(event)` in a task. Events go through
`Runtime.dispatch(event)`, the layer's routing path (what `PluginHost` calls first).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

from benchmarks.common import emit, parse, rss_bytes, seeded, summary, timed_async
from convo_fsm.compat.astrbot import Runtime
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent
from convo_fsm.compat.astrbot.core.utils.session_waiter import SessionController, session_waiter


@session_waiter(timeout=60)
async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
    controller.keep(60, reset_timeout=True)


async def plugin(event: AstrMessageEvent) -> None:
    """A plugin's command handler: start a waiter and wait until the session ends."""
    await waiter(event)


async def start_all(rt: Runtime, events: list[AstrMessageEvent]) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(plugin(e)) for e in events]
    while len(rt.engine) < len(events):  # each task starts its session on its first run
        await asyncio.sleep(0)
    return tasks


async def deliver(size: int, events: int, reps: int, budget: float) -> dict[str, Any]:
    rt = Runtime()
    await start_all(rt, [AstrMessageEvent("/start", f"u{i}", runtime=rt) for i in range(size)])
    rnd = seeded()
    msgs = [AstrMessageEvent("hi", f"u{rnd.randrange(size)}", runtime=rt)
            for _ in range(min(events, 20_000))]
    assert await rt.dispatch(msgs[0]), "a waiting session must take the message"
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(rt.dispatch, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    assert len(rt.engine) == size
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def ordinary(size: int, events: int, reps: int, budget: float) -> dict[str, Any]:
    rt = Runtime()
    await start_all(rt, [AstrMessageEvent("/start", f"u{i}", runtime=rt) for i in range(size)])
    msgs = [AstrMessageEvent("hello", f"other{i}", runtime=rt) for i in range(min(events, 20_000))]
    assert not await rt.dispatch(msgs[0])
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(rt.dispatch, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def memory(size: int, mode: str) -> dict[str, Any]:
    rt = Runtime()
    starts = [AstrMessageEvent("/start", f"u{i}", runtime=rt) for i in range(size)]
    tasks_before = len(asyncio.all_tasks())
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss_bytes()
    await start_all(rt, starts)
    await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else rss_bytes()
    if mode == "tracemalloc":
        # Tracing slows every allocation several times: never leave it on (a test runs
        # this in pytest's own process, and the rest of the suite ran 10x slower).
        tracemalloc.stop()
    tasks = len(asyncio.all_tasks()) - tasks_before
    assert len(rt.engine) == size
    return {"bytes_per_session": (after - before) / size, "tasks_per_session": tasks / size,
            "total_bytes": after - before, "rss_total": rss_bytes()}


async def smoke() -> dict[str, Any]:
    """Every workload once at a tiny size (the test suite's check)."""
    return {"deliver": await deliver(3, 20, 1, 0.05), "ordinary": await ordinary(3, 20, 1, 0.05),
            "memory": await memory(10, "tracemalloc")}


def main() -> None:
    args = parse(workloads=("deliver", "ordinary", "memory", "smoke"),
                 modes=("route", "rss", "tracemalloc"))
    if args.workload == "deliver":
        result = asyncio.run(deliver(args.size, args.events, args.reps, args.budget))
    elif args.workload == "ordinary":
        result = asyncio.run(ordinary(args.size, args.events, args.reps, args.budget))
    elif args.workload == "memory":
        result = asyncio.run(memory(args.size, args.mode))
    else:
        result = asyncio.run(smoke())
    mode = args.mode if args.workload != "smoke" else ""
    emit(system="compat", workload=args.workload, mode=mode, size=args.size, **result)


if __name__ == "__main__":
    main()
