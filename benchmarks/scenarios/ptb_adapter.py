"""python-telegram-bot 21+: its `ConversationHandler` next to convo_fsm through
`convo_fsm.adapters.ptb`, offline, in the main interpreter (system `ptb-app`).

Every update (built before timing, bound to the bot) goes through
`Application.process_update`: every handler group in order, each handler's `check_update`.
The bot's requests are answered locally (`getMe` for `initialize`); no handler here sends.
Modes (the system under test):

- `bare`: the same bot without conversations (a `/start` `CommandHandler` that does nothing
  and a catch-all `MessageHandler`): PTB's bare dispatch of an ordinary message;
- `conv`: a `ConversationHandler` (`/start` -> WAITING; a text handler returns WAITING again,
  per user and chat; `conversation_timeout=60` when PTB's job queue is installed, which then
  reschedules a job per update, as convo_fsm resets its timeout) and the catch-all handler;
- `convo`: `Conversations(app)` (its routing handler in group -1), `/start` from
  `conv.command` starting convo_fsm's waiter spec, and the catch-all handler.

Workloads: `deliver`, `ordinary`, `memory`, as in benchmarks.scenarios.aiogram.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
import warnings
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData

from benchmarks.common import framework_main, framework_smoke, seeded, summary, timed_async
from convo_fsm import KEEP, STOP, On, Spec, State, Timeout
from convo_fsm.adapters.ptb import Conversations

MODES = ("bare", "conv", "convo")
WAITING = 1


async def handler(ctx: Any) -> None:
    """The conversation's handler: nothing to do; the transition keeps the session."""


WAITER = Spec(
    name="waiter",
    initial="waiting",
    states=[State("waiting", on=[On("message", KEEP, action=handler), On("stop", STOP)],
                  timeout=Timeout(60, STOP))],
)


class LocalRequest(BaseRequest):
    """Answers `getMe` and every other call (`True`) locally."""

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None
                         ) -> tuple[int, bytes]:
        result: Any = True
        if url.endswith("/getMe"):
            result = {"id": 1, "is_bot": True, "first_name": "bench", "username": "bench_bot"}
        return 200, json.dumps({"ok": True, "result": result}).encode()


class Counts:
    ordinary = 0


async def build(mode: str) -> tuple[Application[Any, Any, Any, Any, Any, Any], Counts]:
    builder = Application.builder().token("42:BENCH").request(LocalRequest())
    app = builder.get_updates_request(LocalRequest()).build()
    counts = Counts()
    if mode == "convo":
        conv = Conversations(app)
        app.add_handler(conv.command("start", WAITER))
    elif mode == "bare":
        async def nothing(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            pass

        app.add_handler(CommandHandler("start", nothing))
    else:
        async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            return WAITING

        async def keep(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            return WAITING  # stay; PTB reschedules the conversation timeout

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (PTB warns about per_message settings)
            app.add_handler(ConversationHandler(
                entry_points=[CommandHandler("start", start)],
                states={WAITING: [MessageHandler(filters.TEXT & ~filters.COMMAND, keep)]},
                fallbacks=[], conversation_timeout=60 if app.job_queue is not None else None))

    async def catch_all(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        counts.ordinary += 1

    app.add_handler(MessageHandler(filters.ALL, catch_all))  # after them, in group 0
    await app.initialize()
    if app.job_queue is not None:
        await app.start()  # the job queue runs the conversation timeouts
    return app, counts


def update(app: Application[Any, Any, Any, Any, Any, Any], n: int, user: int,
           text: str) -> Update:
    message: dict[str, Any] = {"message_id": n, "date": 0, "text": text,
                               "chat": {"id": user, "type": "private"},
                               "from": {"id": user, "is_bot": False, "first_name": "u"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return Update.de_json({"update_id": n, "message": message}, app.bot)


async def start_all(app: Application[Any, Any, Any, Any, Any, Any], size: int) -> None:
    for i in range(size):
        await app.process_update(update(app, i, 10 + i, "/start"))


async def close(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    if app.running:
        await app.stop()
    await app.shutdown()


async def per_event(workload: str, size: int, events: int, reps: int, budget: float,
                    mode: str) -> dict[str, Any]:
    app, counts = await build(mode)
    if mode != "bare":
        await start_all(app, size)
    rnd = seeded()
    count = min(events, 20_000)
    if workload == "deliver":
        if mode == "bare":
            raise SystemExit("deliver needs waiting users: modes conv or convo")
        msgs = [update(app, i, 10 + rnd.randrange(size), "hi") for i in range(count)]
    else:
        msgs = [update(app, i, 10_000_000 + i, "hello") for i in range(count)]
    await app.process_update(msgs[0])
    before = counts.ordinary
    await app.process_update(msgs[1 % len(msgs)])
    # A delivery must not reach the catch-all handler; an ordinary message must.
    assert counts.ordinary - before == (0 if workload == "deliver" else 1), (workload, mode)
    gc.collect()
    per = []
    for _ in range(reps):
        n, secs = await timed_async(app.process_update, msgs, events, budget)
        per.append(secs / n * 1e6)
    await close(app)
    return {"us_per_event": summary(per), "reps_us": per,
            "job_queue": app.job_queue is not None}


async def memory(size: int, mode: str) -> dict[str, Any]:
    app, _ = await build(mode)
    await app.process_update(update(app, 0, 1, "warm-up"))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await start_all(app, size)  # each update is dropped once handled
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await close(app)
    return {"bytes_per_session": (after - before) / size, "total_bytes": after - before}


async def smoke() -> dict[str, Any]:
    """Every mode and workload once at a tiny size (the test suite's check)."""
    return await framework_smoke(MODES, per_event, memory)


def main() -> None:
    framework_main("ptb-app", MODES, per_event, memory, smoke)


if __name__ == "__main__":
    main()
