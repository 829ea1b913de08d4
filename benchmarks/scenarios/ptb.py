"""python-telegram-bot's ConversationHandler (per user, `conversation_timeout`) on
workloads 1 and 4, offline: an `ExtBot` whose `get_me` answers locally, so
`Application.initialize()`/`start()` need no network; updates go through
`Application.process_update` (PTB's routing path: every handler group's `check_update`,
then the conversation's state handlers). Timeouts are PTB's own: one JobQueue (APScheduler)
job per conversation, rescheduled on every update. Runs in the AstrBot venv, which
already has python-telegram-bot with APScheduler.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import warnings
from typing import Any

from telegram import Chat, Message, Update, User
from telegram.ext import (
    Application,
    ContextTypes,
    ConversationHandler,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)

from benchmarks.common import Heartbeat, emit, parse, seeded, summary, timed_async

WAITING = 1
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class OfflineBot(ExtBot[Any]):
    """A bot that knows who it is without asking Telegram."""

    async def get_me(self, *args: Any, **kwargs: Any) -> User:
        self._bot_user = User(id=1, first_name="bench", is_bot=True, username="bench_bot")
        return self._bot_user


def update(uid: int, text: str, n: int = 1) -> Update:
    user = User(id=uid, first_name=f"u{uid}", is_bot=False)
    return Update(n, message=Message(n, NOW, Chat(uid, Chat.PRIVATE), from_user=user, text=text))


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    return WAITING


async def keep(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    return WAITING  # stay; PTB restarts the conversation timeout


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    return ConversationHandler.END


async def app_with(timeout: float, on_timeout: Any = None) -> Application[Any, Any, Any, Any, Any,
                                                                         Any]:
    async def timed_out(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if on_timeout is not None:
            on_timeout()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = ConversationHandler(
            entry_points=[MessageHandler(filters.Regex("^/start$"), start)],
            states={WAITING: [MessageHandler(filters.Regex("^/cancel$"), cancel),
                              MessageHandler(filters.TEXT, keep)],
                    ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)]},
            fallbacks=[], per_user=True, per_chat=True, conversation_timeout=timeout)
    app = Application.builder().bot(OfflineBot("123:offline")).build()
    assert app.job_queue is not None, "python-telegram-bot needs its job-queue extra"
    app.add_handler(conv)
    await app.initialize()
    await app.start()
    return app


async def deliver(size: int, events: int, reps: int, budget: float) -> dict[str, Any]:
    app = await app_with(60)
    for i in range(size):
        await app.process_update(update(i + 10, "/start", i))
    rnd = seeded()
    msgs = [update(rnd.randrange(size) + 10, "hi", i) for i in range(min(events, 20_000))]
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    for _ in range(reps):
        n, secs = await timed_async(app.process_update, msgs, events, budget)
        per_event.append(secs / n * 1e6)
    conv = next(iter(app.handlers[0]))
    assert isinstance(conv, ConversationHandler) and len(conv._conversations) == size
    await app.stop()
    await app.shutdown()
    return {"us_per_event": summary(per_event), "reps_us": per_event}


async def lifecycle(size: int, reps: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    starts = [update(i + 10, "/start", i) for i in range(size)]
    rnd = seeded()
    out: dict[str, list[float]] = {"start_s": [], "stop_s": [], "stop_block_s": [],
                                   "expire_lag_s": [], "expire_block_s": []}
    for _ in range(reps):
        app = await app_with(3600)
        t0 = loop.time()
        for u in starts:
            await app.process_update(u)
        start_s = loop.time() - t0
        out["start_s"].append(start_s)
        cancels = [update(i + 10, "/cancel", i) for i in range(size)]
        rnd.shuffle(cancels)
        conv = next(iter(app.handlers[0]))
        assert isinstance(conv, ConversationHandler)
        with Heartbeat() as hb:
            t0 = loop.time()
            for u in cancels:
                await app.process_update(u)
            while conv._conversations:
                await asyncio.sleep(0)
            out["stop_s"].append(loop.time() - t0)
            await asyncio.sleep(0.002)
        out["stop_block_s"].append(hb.max_gap)
        await app.stop()
        await app.shutdown()
        # N timeouts: PTB has one conversation_timeout per handler, counted from each
        # conversation's last update; lag is from the latest deadline to the last firing.
        fired = 0
        last = 0.0

        def on_timeout() -> None:
            nonlocal fired, last
            fired += 1
            last = loop.time()

        timeout = 2 * start_s + 0.5
        app = await app_with(timeout, on_timeout)
        for u in starts:
            await app.process_update(u)
        latest_deadline = loop.time() + timeout
        await asyncio.sleep(max(0.0, latest_deadline - loop.time() - 0.05))
        with Heartbeat() as hb:
            while fired < size:
                await asyncio.sleep(0.001)
        out["expire_lag_s"].append(last - latest_deadline)
        out["expire_block_s"].append(hb.max_gap)
        await app.stop()
        await app.shutdown()
    return {k: summary(v) for k, v in out.items()} | {"reps": out}


async def smoke() -> dict[str, Any]:
    """Both workloads once at a tiny size (the test suite's check)."""
    return {"deliver": await deliver(3, 20, 1, 0.05), "lifecycle": await lifecycle(3, 1)}


def main() -> None:
    args = parse(workloads=("deliver", "lifecycle", "smoke"), modes=("route",))
    if args.workload == "deliver":
        result = asyncio.run(deliver(args.size, args.events, args.reps, args.budget))
        mode = "route"
    elif args.workload == "lifecycle":
        result = asyncio.run(lifecycle(args.size, args.reps))
        mode = ""
    else:
        result = asyncio.run(smoke())
        mode = ""
    emit(system="ptb", workload=args.workload, mode=mode, size=args.size, **result)


if __name__ == "__main__":
    main()
