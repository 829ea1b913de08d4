"""aiogram 3: its own FSM next to convo_fsm through `convo_fsm.adapters.aiogram`, offline.

Every event is an aiogram `Update` (built before timing, bound to the bot) fed through
`Dispatcher.feed_update`: aiogram's whole path (update observer, its FSM context middleware,
the message observer's outer middlewares, routers and filters). The bot's session answers
locally; no handler here sends anything. Modes (the system under test):

- `bare`: the same bot without conversations (a `/start` handler that does nothing, and the
  catch-all handler): aiogram's bare dispatch of an ordinary message (the adapter's
  reference; N is irrelevant);
- `fsm`: aiogram's FSM (`MemoryStorage`): `/start` sets `Waiting.waiting`; a handler filtered
  on that state sets it again (the `KEEP` of convo_fsm's spec); a catch-all handler after it;
- `convo`: the same bot with `Conversations.setup(dp)`; `/start` starts convo_fsm's waiter
  spec (a `KEEP` transition with an async no-op action, timeout 60 s reset each message).

Workloads: `deliver` (a message from one of N waiting users, random), `ordinary` (a message
from someone not waiting, which reaches the catch-all handler) and `memory` (tracemalloc
bytes added per waiting user by N `/start` updates).
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import AsyncGenerator
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.base import BaseSession
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State as FsmState
from aiogram.fsm.state import StatesGroup
from aiogram.methods import TelegramMethod
from aiogram.types import Message, Update

from benchmarks.common import framework_main, framework_smoke, seeded, summary, timed_async
from convo_fsm import KEEP, STOP, On, Spec, State, Timeout
from convo_fsm.adapters.aiogram import Conversations

MODES = ("bare", "fsm", "convo")


async def handler(ctx: Any) -> None:
    """The conversation's handler: nothing to do; the transition keeps the session."""


WAITER = Spec(
    name="waiter",
    initial="waiting",
    states=[State("waiting", on=[On("message", KEEP, action=handler), On("stop", STOP)],
                  timeout=Timeout(60, STOP))],
)


class Waiting(StatesGroup):
    waiting = FsmState()


class LocalSession(BaseSession):
    """Answers every request with `True`, locally (nothing here sends; kept for safety)."""

    async def make_request(self, bot: Bot, method: TelegramMethod[Any],
                           timeout: int | None = None) -> Any:
        return self.check_response(bot=bot, method=method, status_code=200,
                                   content=json.dumps({"ok": True, "result": True})).result

    async def close(self) -> None:
        pass

    async def stream_content(self, url: str, headers: dict[str, Any] | None = None,
                             timeout: int = 30, chunk_size: int = 65536,
                             raise_for_status: bool = True) -> AsyncGenerator[bytes, None]:
        yield b""


def build(mode: str) -> tuple[Bot, Dispatcher, list[int]]:
    """The bot, its dispatcher, and a one-item list counting the catch-all handler's calls."""
    bot = Bot("42:BENCH", session=LocalSession())
    dp = Dispatcher()
    ordinary = [0]
    if mode == "convo":
        conv = Conversations(bot)
        conv.command("start", WAITER)
        conv.setup(dp)
    mine = Router(name="mine")
    if mode == "bare":
        @mine.message(Command("start"))
        async def nothing(message: Message) -> None:
            pass

    if mode == "fsm":
        @mine.message(Command("start"))
        async def start(message: Message, state: FSMContext) -> None:
            await state.set_state(Waiting.waiting)

        @mine.message(Waiting.waiting)
        async def keep(message: Message, state: FSMContext) -> None:
            await state.set_state(Waiting.waiting)  # stay (aiogram has no timeout to reset)

    @mine.message()
    async def catch_all(message: Message) -> None:
        ordinary[0] += 1

    dp.include_router(mine)
    return bot, dp, ordinary


def update(bot: Bot, n: int, user: int, text: str) -> Update:
    return Update.model_validate(
        {"update_id": n, "message": {"message_id": n, "date": 0,
                                     "chat": {"id": user, "type": "private"},
                                     "from": {"id": user, "is_bot": False, "first_name": "u"},
                                     "text": text}},
        context={"bot": bot})


async def start_all(bot: Bot, dp: Dispatcher, size: int, mode: str) -> None:
    if mode == "bare":
        return
    for i in range(size):
        await dp.feed_update(bot, update(bot, i, 10 + i, "/start"))


async def per_event(workload: str, size: int, events: int, reps: int, budget: float,
                    mode: str) -> dict[str, Any]:
    bot, dp, ordinary = build(mode)
    await start_all(bot, dp, size, mode)
    rnd = seeded()
    count = min(events, 20_000)
    if workload == "deliver":
        if mode == "bare":
            raise SystemExit("deliver needs waiting users: modes fsm or convo")
        msgs = [update(bot, i, 10 + rnd.randrange(size), "hi") for i in range(count)]
    else:
        msgs = [update(bot, i, 10_000_000 + i, "hello") for i in range(count)]

    async def one(u: Update) -> Any:
        return await dp.feed_update(bot, u)

    await one(msgs[0])
    before = ordinary[0]
    await one(msgs[1 % len(msgs)])
    # A delivery must not reach the catch-all handler; an ordinary message must.
    assert ordinary[0] - before == (0 if workload == "deliver" else 1), (workload, mode)
    gc.collect()
    per = []
    for _ in range(reps):
        n, secs = await timed_async(one, msgs, events, budget)
        per.append(secs / n * 1e6)
    return {"us_per_event": summary(per), "reps_us": per}


async def memory(size: int, mode: str) -> dict[str, Any]:
    bot, dp, _ = build(mode)
    await dp.feed_update(bot, update(bot, 0, 1, "warm-up"))  # first-call caches, not per user
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(size):  # each update is dropped once handled: what stays is per user
        await dp.feed_update(bot, update(bot, i, 10 + i, "/start"))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"bytes_per_session": (after - before) / size, "total_bytes": after - before}


async def smoke() -> dict[str, Any]:
    """Every mode and workload once at a tiny size (the test suite's check)."""
    return await framework_smoke(MODES, per_event, memory)


def main() -> None:
    framework_main("aiogram", MODES, per_event, memory, smoke)


if __name__ == "__main__":
    main()
