"""README's framework bots (examples/aiogram_signup.py, examples/ptb_signup.py) run the
signup conversation as README says, offline, on a virtual clock."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiogram")
pytest.importorskip("telegram")

from aiogram import Bot
from aiogram.types import Update as AiogramUpdate
from telegram import Update as PtbUpdate
from telegram.ext import Application
from telegram_fakes import LocalRequest, RecordingSession, update_data

from convo_fsm import VirtualClock
from convo_fsm.adapters import aiogram as aiogram_adapter
from convo_fsm.adapters import ptb as ptb_adapter

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import aiogram_signup
import ptb_signup

# (user, what they say, or seconds that pass) -> what the bot sends, to whom
SCRIPT: list[tuple[int, str | float, list[tuple[int, str]]]] = [
    (7, "/signup", [(7, "Your name?")]),
    (7, "Ada", [(7, "Hi Ada! How old are you?")]),
    (7, "old", [(7, "A number, please.")]),
    (8, "hello", [(8, "You said: hello")]),  # no session: the bot's own handler
    (8, "/signup", [(8, "Your name?")]),
    (8, "/cancel", [(8, "Cancelled.")]),
    (9, "/signup", [(9, "Your name?")]),
    (0, 45.0, [(7, "15 s left to give your age.")]),
    (0, 15.0, [(7, "Saved without an age."), (9, "Too slow, bye.")]),
    (7, "/signup", [(7, "Your name?")]),
    (7, "Bob", [(7, "Hi Bob! How old are you?")]),
    (7, "36", [(7, "Saved: Bob, 36.")]),
    (7, "36", [(7, "You said: 36")]),
]


async def test_the_aiogram_example_bot() -> None:
    clock, session = VirtualClock(), RecordingSession()
    bot = Bot("42:TEST", session=session)
    conv = aiogram_adapter.Conversations(bot, clock=clock)
    dp = aiogram_signup.build(conv)
    ids = itertools.count(1)
    for user, said, answers in SCRIPT:
        if isinstance(said, float):
            await clock.advance(said)
            await conv.drain()
        else:
            update = AiogramUpdate.model_validate(update_data(next(ids), user, said),
                                                  context={"bot": bot})
            await dp.feed_update(bot, update)
        assert sorted(session.sent()) == answers, (user, said)
    await conv.close()


async def test_the_ptb_example_bot() -> None:
    clock, request = VirtualClock(), LocalRequest()
    app = (Application.builder().token("42:TEST").request(request)
           .get_updates_request(LocalRequest()).job_queue(None).build())
    conv = ptb_signup.build(app, clock=clock)
    assert isinstance(conv, ptb_adapter.Conversations)
    await app.initialize()
    request.sent()
    ids = itertools.count(1)
    for user, said, answers in SCRIPT:
        if isinstance(said, float):
            await clock.advance(said)
            await conv.drain()
        else:
            await app.process_update(PtbUpdate.de_json(update_data(next(ids), user, said),
                                                       app.bot))
        assert sorted(request.sent()) == answers, (user, said)
    await conv.close()
    await app.shutdown()
