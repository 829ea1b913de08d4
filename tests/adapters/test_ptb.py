"""convo_fsm.adapters.ptb against real python-telegram-bot (21+), offline.

Updates go through `Application.process_update` (PTB's routing: every handler group in
order, group -1 first). The bot's requests go to a real `BaseRequest` subclass that records
each call and answers it with Telegram-shaped JSON, which PTB parses as usual;
`Application.initialize()` gets its `getMe` from it too: no network. Time is a
`VirtualClock`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("telegram")
pytest.importorskip("aiogram")  # (telegram_fakes has both fakes)

from chat_specs import COUNTER, FORM, FRAGILE, QUIZ
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters
from telegram_cases import TelegramCases
from telegram_fakes import LocalRequest

from convo_fsm import VirtualClock
from convo_fsm.adapters.ptb import Conversations

GROUP = -1001


class Harness:
    """An Application with convo_fsm set up, and an ordinary handler in group 0."""

    def __init__(self, clock: VirtualClock, **engine: Any) -> None:
        self.session = LocalRequest()
        self.app = (Application.builder().token("42:TEST").request(self.session)
                    .get_updates_request(LocalRequest()).job_queue(None).build())
        self.conv = Conversations(self.app, clock=clock, **engine)
        self.app.add_handler(self.conv.command("quiz", QUIZ))
        self.app.add_handler(self.conv.command("form", FORM))
        self.app.add_handler(self.conv.command("count", COUNTER, per="group"))
        self.app.add_handler(self.conv.command("fragile", FRAGILE))
        self.ordinary: list[str] = []

        async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.message is not None
            self.ordinary.append(str(update.message.text))
            await update.message.reply_text(f"echo: {update.message.text}")

        self.echo = MessageHandler(filters.TEXT, echo)
        self.app.add_handler(self.echo)
        self._ids = itertools.count(1)

    async def open(self) -> Harness:
        await self.app.initialize()  # getMe, answered by LocalRequest
        self.session.calls.clear()
        return self

    async def say(self, user: int, text: str, chat: int | None = None) -> list[tuple[int, str]]:
        n = next(self._ids)
        chat_obj = ({"id": user, "type": "private"} if chat is None
                    else {"id": chat, "type": "supergroup", "title": "g"})
        data = {"update_id": n, "message": {"message_id": n, "date": 0, "chat": chat_obj,
                                            "from": {"id": user, "is_bot": False,
                                                     "first_name": f"u{user}"},
                                            "text": text}}
        if text.startswith("/"):
            data["message"]["entities"] = [  # type: ignore[index]
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        await self.app.process_update(Update.de_json(data, self.app.bot))
        return self.session.sent()

    async def advance(self, clock: VirtualClock, seconds: float) -> list[tuple[int, str]]:
        await clock.advance(seconds)
        await self.conv.drain()
        return self.session.sent()

    def command(self, name: str, spec: Any, per: str) -> None:
        # In one PTB group the first matching handler wins: the catch-all text handler goes
        # after the new command again.
        self.app.remove_handler(self.echo)
        self.app.add_handler(self.conv.command(name, spec, per=per))
        self.app.add_handler(self.echo)

    async def close(self) -> None:
        await self.conv.close()
        await self.app.shutdown()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def native_type() -> str:
    return "Update"


@pytest.fixture
def open_harness() -> Callable[..., Awaitable[Harness]]:
    async def open_(clock: VirtualClock, **engine: Any) -> Harness:
        return await Harness(clock, **engine).open()

    return open_


@pytest.fixture
async def h(clock: VirtualClock) -> AsyncGenerator[Harness, None]:
    harness = await Harness(clock).open()
    yield harness
    await harness.close()


class TestPtb(TelegramCases):
    """The scenarios both Telegram adapters pass (telegram_cases.py)."""


async def test_the_route_handler_runs_before_group_0_and_stops_there(h: Harness) -> None:
    assert h.conv.handler in h.app.handlers[-1]
    await h.say(7, "/quiz")
    assert await h.say(7, "41") == [(7, "No, try again.")]
    assert h.ordinary == []  # ApplicationHandlerStop: group 0 never saw it
