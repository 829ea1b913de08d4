"""convo_fsm.adapters.aiogram against real aiogram 3, offline.

Updates go through `Dispatcher.feed_update` (aiogram's whole path: update observer, FSM
middleware, the message observer's outer middlewares, routers and filters). The bot's
session is a real `BaseSession` subclass that records each API request and answers it with
a Telegram-shaped JSON reply parsed by aiogram's own `check_response`: no network. Time is a
`VirtualClock`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiogram")
pytest.importorskip("telegram")  # (telegram_fakes has both fakes)

from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message, Update
from chat_specs import COUNTER, FORM, FRAGILE, QUIZ
from telegram_cases import TelegramCases
from telegram_fakes import RecordingSession

from convo_fsm import VirtualClock
from convo_fsm.adapters.aiogram import Conversations
from convo_fsm.storage import SqliteStore

GROUP = -1001


class Harness:
    """A dispatcher with convo_fsm set up, and an ordinary handler after it."""

    def __init__(self, clock: VirtualClock, **engine: Any) -> None:
        self.session = RecordingSession()
        self.bot = Bot("42:TEST", session=self.session)
        self.dp = Dispatcher()
        self.conv = Conversations(self.bot, clock=clock, **engine)
        self.conv.command("quiz", QUIZ)
        self.conv.command("form", FORM)
        self.conv.command("count", COUNTER, per="group")
        self.conv.command("fragile", FRAGILE)
        self.conv.setup(self.dp)
        self.ordinary: list[str] = []
        mine = Router(name="mine")

        @mine.message()
        async def echo(message: Message) -> None:
            self.ordinary.append(str(message.text))
            await message.answer(f"echo: {message.text}")

        self.dp.include_router(mine)
        self._ids = itertools.count(1)

    async def say(self, user: int, text: str, chat: int | None = None) -> list[tuple[int, str]]:
        n = next(self._ids)
        chat_obj = ({"id": user, "type": "private"} if chat is None
                    else {"id": chat, "type": "supergroup", "title": "g"})
        update = Update.model_validate(
            {"update_id": n, "message": {"message_id": n, "date": 0, "chat": chat_obj,
                                          "from": {"id": user, "is_bot": False,
                                                   "first_name": f"u{user}"},
                                          "text": text}},
            context={"bot": self.bot})
        await self.dp.feed_update(self.bot, update)
        return self.session.sent()

    async def advance(self, clock: VirtualClock, seconds: float) -> list[tuple[int, str]]:
        await clock.advance(seconds)
        await self.conv.drain()
        return self.session.sent()

    def command(self, name: str, spec: Any, per: str) -> None:
        self.conv.command(name, spec, per=per)

    async def close(self) -> None:
        await self.conv.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def native_type() -> str:
    return "Message"


@pytest.fixture
def open_harness() -> Callable[..., Awaitable[Harness]]:
    async def open_(clock: VirtualClock, **engine: Any) -> Harness:
        return Harness(clock, **engine)

    return open_


@pytest.fixture
async def h(clock: VirtualClock) -> AsyncGenerator[Harness, None]:
    harness = Harness(clock)
    yield harness
    await harness.close()


class TestAiogram(TelegramCases):
    """The scenarios both Telegram adapters pass (telegram_cases.py)."""


async def test_the_dispatchers_startup_restores_and_its_shutdown_closes(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    clock = VirtualClock(0.0)
    first = Harness(clock, store=SqliteStore(db))
    await first.say(7, "/quiz")
    await first.dp.emit_shutdown(bot=first.bot)  # aiogram's shutdown: the engine closes
    assert len(first.conv.engine) == 0 and len(await SqliteStore(db).list()) == 1
    second = Harness(VirtualClock(21.0), store=SqliteStore(db))
    await second.dp.emit_startup(bot=second.bot)  # what start_polling does first
    assert second.conv.engine.session("telegram:user:7") is not None
    assert second.session.sent() == [(7, "10 s left")]  # its warning fell due while down
    assert await second.say(7, "42") == [(7, "Right!"), (7, "Thanks for playing.")]
    await second.dp.emit_shutdown(bot=second.bot)
