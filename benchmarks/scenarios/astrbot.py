"""Real AstrBot 4.29.3 on workloads 1-4, run in the Python 3.12 venv (`benchmarks.env`).

A waiting session is what a plugin's `@session_waiter(timeout=60)` handler creates:
the plugin's coroutine awaits `waiter(event)` in a task (as AstrBot's pipeline runs it) and
the handler calls `controller.keep(60, reset_timeout=True)` on every message.
Events go through `ProcessStage.process` (mode `route`: AstrBot's routing to waiters, at
the top of that pipeline stage, then its ordinary handling) or `SessionWaiter.trigger`
(mode `direct`). The stage runs without `initialize()`; it then needs only
`ctx.astrbot_config["provider_settings"]["enable"]` (False: no LLM call).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from types import SimpleNamespace
from typing import Any

from astrbot.core.message.components import Plain
from astrbot.core.pipeline.process_stage.stage import ProcessStage
from astrbot.core.platform.astr_message_event import AstrMessageEvent
from astrbot.core.platform.astrbot_message import AstrBotMessage, MessageMember
from astrbot.core.platform.message_type import MessageType
from astrbot.core.platform.platform_metadata import PlatformMetadata
from astrbot.core.utils import session_waiter as sw

from benchmarks.common import Heartbeat, emit, parse, rss_bytes, seeded, summary, timed_async

META = PlatformMetadata(name="bench", description="benchmark platform", id="bench")


class BenchEvent(AstrMessageEvent):
    async def send(self, message: Any) -> None:
        """Replies go nowhere: the workloads send none."""


def make_event(sender: str, text: str) -> BenchEvent:
    m = AstrBotMessage()
    m.type = MessageType.FRIEND_MESSAGE
    m.self_id = "bot"
    m.session_id = sender
    m.message_id = "1"
    m.sender = MessageMember(user_id=sender, nickname=sender)
    m.message = [Plain(text)]
    m.message_str = text
    m.raw_message = None
    return BenchEvent(text, m, META, sender)


async def handler(controller: sw.SessionController, event: AstrMessageEvent) -> None:
    controller.keep(60, reset_timeout=True)


def stage() -> ProcessStage:
    s = ProcessStage()
    s.ctx = SimpleNamespace(astrbot_config={"provider_settings": {"enable": False}})  # type: ignore[assignment]
    return s


async def plugin(event: AstrMessageEvent, timeout: float, outcome: list[Any]) -> None:
    """A plugin's command handler: start a waiter and wait until the session ends."""
    try:
        await sw.session_waiter(timeout=timeout)(handler)(event)
        outcome.append(None)
    except TimeoutError as exc:
        outcome.append(exc)


async def start_all(events: list[BenchEvent], timeout: float, outcome: list[Any]
                    ) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(plugin(e, timeout, outcome)) for e in events]
    while len(sw.USER_SESSIONS) < len(events):  # each task registers on its first run
        await asyncio.sleep(0)
    return tasks


async def deliver(size: int, events: int, reps: int, budget: float, mode: str) -> dict[str, Any]:
    outcome: list[Any] = []
    await start_all([make_event(f"u{i}", "/start") for i in range(size)], 60, outcome)
    rnd = seeded()
    msgs = [make_event(f"u{rnd.randrange(size)}", "hi") for _ in range(min(events, 20_000))]
    if mode == "route":
        st = stage()

        async def one(e: BenchEvent) -> None:
            async for _ in st.process(e):
                pass
    else:
        async def one(e: BenchEvent) -> None:
            await sw.SessionWaiter.trigger(e.unified_msg_origin, e)

    await one(msgs[0])
    assert msgs[0].is_stopped() or mode == "direct", "a waiting session must take the message"
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(one, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    assert len(sw.USER_SESSIONS) == size and not outcome
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def ordinary(size: int, events: int, reps: int, budget: float) -> dict[str, Any]:
    outcome: list[Any] = []
    await start_all([make_event(f"u{i}", "/start") for i in range(size)], 60, outcome)
    msgs = [make_event(f"other{i}", "hello") for i in range(min(events, 20_000))]
    st = stage()

    async def one(e: BenchEvent) -> None:
        async for _ in st.process(e):
            pass

    await one(msgs[0])
    assert not msgs[0].is_stopped(), "no session may take an ordinary message"
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(one, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def memory(size: int, mode: str) -> dict[str, Any]:
    starts = [make_event(f"u{i}", "/start") for i in range(size)]
    outcome: list[Any] = []
    tasks_before = len(asyncio.all_tasks())
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss_bytes()
    await start_all(starts, 3600, outcome)
    for _ in range(3):  # let each keep()'s timer task start waiting
        await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else rss_bytes()
    if mode == "tracemalloc":
        # Tracing slows every allocation several times: never leave it on (a test runs
        # this in pytest's own process, and the rest of the suite ran 10x slower).
        tracemalloc.stop()
    tasks = len(asyncio.all_tasks()) - tasks_before
    assert len(sw.USER_SESSIONS) == size
    return {"bytes_per_session": (after - before) / size, "tasks_per_session": tasks / size,
            "total_bytes": after - before, "rss_total": rss_bytes()}


async def lifecycle(size: int, reps: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    starts = [make_event(f"u{i}", "/start") for i in range(size)]
    rnd = seeded()
    out: dict[str, list[float]] = {"start_s": [], "stop_s": [], "stop_block_s": [],
                                   "expire_lag_s": [], "expire_block_s": [],
                                   "expire_margin_s": [], "expire_late": []}
    for _ in range(reps):
        outcome: list[Any] = []
        t0 = loop.time()
        tasks = await start_all(starts, 3600, outcome)
        start_s = loop.time() - t0
        out["start_s"].append(start_s)
        waiters = list(sw.USER_SESSIONS.values())
        rnd.shuffle(waiters)
        with Heartbeat() as hb:
            t0 = loop.time()
            for w in waiters:
                w.session_controller.stop()
            await asyncio.gather(*tasks)  # each plugin's await returns: the session is over
            out["stop_s"].append(loop.time() - t0)
            await asyncio.sleep(0.002)
        out["stop_block_s"].append(hb.max_gap)
        assert not sw.USER_SESSIONS and not sw.FILTERS
        # N timeouts falling due at one instant: each waiter's timeout is computed so its
        # deadline is `due` when it registers; time from `due` until all have fired.
        # Starting again after stops is slower than the first start (the stopped waiters'
        # timer tasks still pend: AstrBot's bug 5), hence the wide margin.
        outcome = []
        due = loop.time() + 0.5 + 5 * start_s
        done = 0
        last = 0.0

        def fired(_: asyncio.Task[None]) -> None:
            nonlocal done, last
            done += 1
            last = loop.time()

        async def timed_plugin(e: AstrMessageEvent, due: float, outcome: list[Any]) -> None:
            await plugin(e, due - loop.time(), outcome)

        tasks = [asyncio.create_task(timed_plugin(e, due, outcome)) for e in starts]
        for t in tasks:
            t.add_done_callback(fired)
        while len(sw.USER_SESSIONS) + len(outcome) < size:
            await asyncio.sleep(0)
        out["expire_margin_s"].append(due - loop.time())
        await asyncio.sleep(max(0.0, due - loop.time() - 0.05))
        with Heartbeat() as hb:
            while done < size:
                await asyncio.sleep(0.001)
        out["expire_lag_s"].append(last - due)
        out["expire_block_s"].append(hb.max_gap)
        # A waiter that registered after `due` ends at once (keep(<= 0)): counted, not timed.
        out["expire_late"].append(sum(1 for o in outcome if o is None))
        assert len(outcome) == size and not sw.USER_SESSIONS
    return {k: summary(v) for k, v in out.items()} | {"reps": out}


async def clear() -> None:
    """End every waiter a workload left (a later one reuses the keys), as a new process would."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in others:
        t.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    sw.USER_SESSIONS.clear()
    sw.FILTERS.clear()


async def smoke() -> dict[str, Any]:
    """Every workload once at a tiny size, in this process (the test suite's check)."""
    out = {}
    for name, work in (("deliver", deliver(3, 20, 1, 0.05, "route")),
                       ("deliver_direct", deliver(3, 20, 1, 0.05, "direct")),
                       ("ordinary", ordinary(3, 20, 1, 0.05)),
                       ("memory", memory(10, "rss")),
                       ("memory_tracemalloc", memory(10, "tracemalloc")),
                       ("lifecycle", lifecycle(3, 1))):
        out[name] = await work
        await clear()
    return out


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
    emit(system="astrbot", workload=args.workload, mode=mode, size=args.size, **result)


if __name__ == "__main__":
    main()
