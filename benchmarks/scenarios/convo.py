"""convo_fsm's engine on workloads 1-4 (see benchmarks/RESULTS.md for what each means).

The conversation is the AstrBot waiter's equivalent: one state whose `message`
transition keeps it (async handler, timeout reset to 60 s, like
`controller.keep(60, reset_timeout=True)`), ended by `stop` or the timeout.
Events go through `Engine.dispatch` (mode `route`: the host's routing path: one key per
registered filter kind, one dict lookup) or `Engine.deliver(key, event)` (mode `direct`).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

from benchmarks.common import Heartbeat, emit, parse, rss_bytes, seeded, summary, timed_async
from convo_fsm import KEEP, STOP, Ended, Engine, Message, On, Spec, State, Timeout


async def handler(ctx: Any) -> None:
    """The plugin's handler: nothing to do; the transition keeps the session for 60 s."""


WAITER = Spec(
    name="waiter",
    initial="waiting",
    states=[State("waiting", on=[On("message", KEEP, action=handler), On("stop", STOP)],
                  timeout=Timeout(60, STOP))],
)
IDLE = Spec(  # lifecycle: timeouts are set explicitly, all to one instant
    name="idle",
    initial="waiting",
    states=[State("waiting", on=[On("stop", STOP)], timeout=Timeout(3600, STOP))],
)


def sender(i: int) -> str:
    return f"u{i}"


async def start_all(engine: Engine, spec: Spec, starts: list[Message]) -> None:
    for m in starts:
        await engine.start(spec, engine.key("member", m), event=m)


async def deliver(size: int, events: int, reps: int, budget: float, mode: str) -> dict[str, Any]:
    engine = Engine()
    await start_all(engine, WAITER, [Message("/start", sender=sender(i)) for i in range(size)])
    rnd = seeded()
    msgs = [Message("hi", sender=sender(rnd.randrange(size))) for _ in range(min(events, 50_000))]
    if mode == "route":
        one = engine.dispatch
    else:
        keys = {m: engine.key("member", m) for m in msgs}

        async def one(m: Message) -> bool:
            return await engine.deliver(keys[m], m)

    assert await one(msgs[0]), "a waiting session must consume its sender's message"
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(one, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    assert len(engine) == size
    await engine.close()
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def ordinary(size: int, events: int, reps: int, budget: float) -> dict[str, Any]:
    engine = Engine()
    await start_all(engine, WAITER, [Message("/start", sender=sender(i)) for i in range(size)])
    msgs = [Message("hello", sender=f"other{i}") for i in range(min(events, 50_000))]

    async def one(m: Message) -> bool:
        consumed = await engine.dispatch(m)
        return consumed  # False: the host hands it to its ordinary handlers

    assert not await one(msgs[0])
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(one, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    await engine.close()
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def memory(size: int, mode: str) -> dict[str, Any]:
    engine = Engine()
    starts = [Message("/start", sender=sender(i)) for i in range(size)]
    tasks_before = len(asyncio.all_tasks())
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss_bytes()
    await start_all(engine, WAITER, starts)
    await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else rss_bytes()
    if mode == "tracemalloc":
        # Tracing slows every allocation several times: never leave it on (a test runs
        # this in pytest's own process, and the rest of the suite ran 10x slower).
        tracemalloc.stop()
    tasks = len(asyncio.all_tasks()) - tasks_before
    assert len(engine) == size
    return {"bytes_per_session": (after - before) / size, "tasks_per_session": tasks / size,
            "total_bytes": after - before, "rss_total": rss_bytes()}


async def lifecycle(size: int, reps: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    ended = 0
    last_end = 0.0

    def on_end(_: Ended) -> None:
        nonlocal ended, last_end
        ended += 1
        last_end = loop.time()

    engine = Engine(on_end=on_end)
    starts = [Message("/start", sender=sender(i)) for i in range(size)]
    rnd = seeded()
    out: dict[str, list[float]] = {"start_s": [], "stop_s": [], "stop_block_s": [],
                                   "expire_lag_s": [], "expire_block_s": [],
                                   "expire_margin_s": []}
    for _ in range(reps):
        t0 = loop.time()
        await start_all(engine, IDLE, starts)
        out["start_s"].append(loop.time() - t0)
        keys = [engine.key("member", m) for m in starts]
        rnd.shuffle(keys)
        ended = 0
        with Heartbeat() as hb:
            t0 = loop.time()
            for k in keys:
                engine.stop(k)
            while ended < size:  # stop() ends at once; nothing left to wait for
                await asyncio.sleep(0)
            out["stop_s"].append(loop.time() - t0)
            await asyncio.sleep(0.002)
        out["stop_block_s"].append(hb.max_gap)
        assert len(engine) == 0 and engine.pending_timers() == 0
        # N timeouts falling due at one instant: time from that instant until all fired.
        t0 = loop.time()
        await start_all(engine, IDLE, starts)
        # Setting N deadlines costs less than starting N sessions: this margin lets every
        # deadline be set before the instant they share.
        due = loop.time() + 0.2 + 1.5 * (loop.time() - t0)
        for k in keys:
            engine.set_deadline(k, due)
        out["expire_margin_s"].append(due - loop.time())
        ended = 0
        with Heartbeat() as hb:
            while ended < size:
                await asyncio.sleep(0.001)
            out["expire_lag_s"].append(last_end - due)
        out["expire_block_s"].append(hb.max_gap)
        assert len(engine) == 0
    await engine.close()
    return {k: summary(v) for k, v in out.items()} | {"reps": out}


async def smoke() -> dict[str, Any]:
    """Every workload once at a tiny size, in this process (the test suite's check)."""
    return {"deliver": await deliver(3, 20, 1, 0.05, "route"),
            "deliver_direct": await deliver(3, 20, 1, 0.05, "direct"),
            "ordinary": await ordinary(3, 20, 1, 0.05),
            "memory": await memory(10, "rss"),
            "memory_tracemalloc": await memory(10, "tracemalloc"),
            "lifecycle": await lifecycle(3, 1)}


def main() -> None:
    args = parse(workloads=("deliver", "ordinary", "memory", "lifecycle", "smoke"),
                 modes=("route", "direct", "rss", "tracemalloc"))
    if args.workload == "deliver":
        result = asyncio.run(deliver(args.size, args.events, args.reps, args.budget, args.mode))
    elif args.workload == "ordinary":
        result = asyncio.run(ordinary(args.size, args.events, args.reps, args.budget))
    elif args.workload == "memory":
        result = asyncio.run(memory(args.size, args.mode))
    elif args.workload == "lifecycle":
        result = asyncio.run(lifecycle(args.size, args.reps))
    else:
        result = asyncio.run(smoke())
    mode = args.mode if args.workload in ("deliver", "ordinary", "memory") else ""
    emit(system="convo_fsm", workload=args.workload, mode=mode, size=args.size, **result)


if __name__ == "__main__":
    main()
