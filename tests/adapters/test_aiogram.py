"""convo_fsm.adapters.aiogram against real aiogram 3, offline.

Updates go through `Dispatcher.feed_update` (aiogram's whole path: update observer, FSM
middleware, the message observer's outer middlewares, routers and filters). The bot's
session is a real `BaseSession` subclass that records each API request and answers it with
a Telegram-shaped JSON reply parsed by aiogram's own `check_response`: no network. Time is a
`VirtualClock`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiogram")
pytest.importorskip("telegram")  # (telegram_fakes has both fakes)

from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message, Update
from chat_specs import COUNTER, FORM, FRAGILE, QUIZ
from telegram_fakes import RecordingSession

from convo_fsm import Ended, VirtualClock
from convo_fsm.adapters.aiogram import ChatEvent, Conversations
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


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def h(clock: VirtualClock) -> AsyncGenerator[Harness, None]:
    harness = Harness(clock)
    yield harness
    await harness.conv.close()


async def test_a_command_starts_the_spec_and_later_messages_reach_it(h: Harness) -> None:
    assert await h.say(7, "/quiz") == [(7, "What is 6 x 7?")]
    assert await h.say(7, "41") == [(7, "No, try again.")]
    assert await h.say(7, "42") == [(7, "Right!"), (7, "Thanks for playing.")]
    assert len(h.conv.engine) == 0
    assert h.ordinary == []  # the session took every message
    assert await h.say(7, "42") == [(7, "echo: 42")]  # over: the bot's own handler again
    assert h.ordinary == ["42"]


async def test_a_second_start_on_a_busy_key_says_so(h: Harness) -> None:
    await h.say(7, "/quiz")
    assert await h.say(7, "/form") == [(7, "A quiz conversation is already running here.")]
    assert h.conv.engine.session("telegram:user:7").spec == "quiz"  # type: ignore[union-attr]


async def test_a_multi_step_form_sees_the_native_message(h: Harness) -> None:
    assert await h.say(7, "/form") == [(7, "Your name?")]
    assert await h.say(7, "Ada") == [(7, "Hello Ada. How old are you?")]
    assert await h.say(7, "old") == [(7, "A number, please.")]
    session = h.conv.engine.session("telegram:user:7")
    assert session is not None and session.state == "age"
    assert session.data == {"name": "Ada", "native": "Message"}
    ended = h.conv.engine.wait_ended("telegram:user:7")
    assert await h.say(7, "36") == [(7, "Ada, 36: saved.")]
    assert (await ended).reason == "final"
    assert (await ended).session.data["age"] == 36


async def test_a_warning_then_a_timeout_moving_to_another_state(h: Harness,
                                                                 clock: VirtualClock) -> None:
    await h.say(7, "/quiz")
    assert await h.advance(clock, 19) == []
    assert await h.advance(clock, 1) == [(7, "10 s left")]
    assert await h.advance(clock, 10) == [(7, "Still there? One more chance.")]
    assert h.conv.engine.session("telegram:user:7").state == "reminded"  # type: ignore[union-attr]
    # In "reminded" only 42 is taken: anything else reaches the ordinary handler.
    assert await h.say(7, "hello") == [(7, "echo: hello")]
    assert await h.advance(clock, 30) == [(7, "Time's up: it was 42.")]
    assert len(h.conv.engine) == 0


async def test_messages_no_session_wants_reach_the_ordinary_handlers(h: Harness) -> None:
    assert await h.say(8, "hi") == [(8, "echo: hi")]  # no session at all
    await h.say(7, "/quiz")
    assert await h.say(8, "hi again") == [(8, "echo: hi again")]  # another user's session
    assert await h.say(7, "hi", chat=GROUP) == [(GROUP, "echo: hi")]  # same user, other chat
    assert h.ordinary == ["hi", "hi again", "hi"]


async def test_two_users_in_one_group_are_kept_apart(h: Harness) -> None:
    assert await h.say(7, "/quiz", chat=GROUP) == [(GROUP, "What is 6 x 7?")]
    assert await h.say(8, "/form", chat=GROUP) == [(GROUP, "Your name?")]
    assert await h.say(8, "Bob", chat=GROUP) == [(GROUP, "Hello Bob. How old are you?")]
    assert await h.say(7, "41", chat=GROUP) == [(GROUP, "No, try again.")]
    keys = sorted(s.key for s in h.conv.engine.sessions())
    assert keys == [f"telegram:group:{GROUP}:7", f"telegram:group:{GROUP}:8"]
    assert await h.say(9, "42", chat=GROUP) == [(GROUP, "echo: 42")]  # a third member: nobody's


async def test_a_group_wide_session_is_shared_by_the_chat(h: Harness) -> None:
    assert await h.say(7, "/count", chat=GROUP) == [(GROUP, "Counting.")]
    assert await h.say(8, "a", chat=GROUP) == [(GROUP, "a (1)")]
    assert await h.say(9, "b", chat=GROUP) == [(GROUP, "b (2)")]
    assert await h.say(8, "c") == [(8, "echo: c")]  # the same member in private: not the group's
    assert await h.say(7, "/end", chat=GROUP) == [(GROUP, "Done.")]
    assert [s.key for s in h.conv.engine.sessions()] == []


async def test_an_action_error_ends_only_its_session(clock: VirtualClock) -> None:
    ended: list[Ended] = []
    h = Harness(clock, on_end=ended.append)
    await h.say(7, "/fragile")
    await h.say(8, "/quiz")
    assert await h.say(7, "x") == [(7, "fine")]
    assert await h.say(7, "boom") == []  # consumed; the session ends with reason "error"
    assert [(e.session.key, e.reason) for e in ended] == [("telegram:user:7", "error")]
    assert isinstance(ended[0].error, RuntimeError)
    assert await h.say(7, "x") == [(7, "echo: x")]  # the bot goes on
    assert await h.say(8, "42") == [(8, "Right!"), (8, "Thanks for playing.")]
    await h.conv.close()


async def test_a_restart_with_sqlite_resumes_the_conversation_and_its_timers(
        tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    clock = VirtualClock(1_000.0)
    first = Harness(clock, store=SqliteStore(db))
    await first.say(7, "/quiz")
    await first.say(8, "/form")
    await first.say(8, "Ada")
    await first.advance(clock, 5)
    await first.conv.close()  # the process goes away; the sessions stay stored

    # A new process, 22 s after the start: user 7's warning (at 20 s) fell due meanwhile.
    clock2 = VirtualClock(1_022.0)
    second = Harness(clock2, store=SqliteStore(db))
    live = await second.conv.restore()
    assert sorted(s.key for s in live) == ["telegram:user:7", "telegram:user:8"]
    # Fired at once, through the bot (no event in memory: the chat comes from the key).
    assert second.session.sent() == [(7, "10 s left")]
    assert await second.advance(clock2, 8) == [(7, "Still there? One more chance.")]
    assert await second.say(8, "36") == [(8, "Ada, 36: saved.")]
    assert await second.say(7, "42") == [(7, "Thanks for playing.")]
    assert len(second.conv.engine) == 0
    await second.conv.close()
    assert await SqliteStore(db).list() == []


async def test_the_spec_gets_a_chat_event_around_the_native_message(clock: VirtualClock) -> None:
    seen: list[Any] = []
    h = Harness(clock, trace=lambda r: seen.append(r.event) if r.kind == "event" else None)
    await h.say(7, "/form", chat=GROUP)
    await h.say(7, "Ada", chat=GROUP)
    await h.conv.close()
    (event,) = seen
    assert isinstance(event, ChatEvent)
    assert (event.text, event.sender, event.group) == ("Ada", "7", str(GROUP))
    assert isinstance(event.native, Message) and event.native.chat.id == GROUP


async def test_bad_per_is_a_clear_error(h: Harness) -> None:
    with pytest.raises(ValueError, match="per must be one of"):
        h.conv.command("x", QUIZ, per="room")


async def test_commands_naming_this_bot_reach_the_spec(h: Harness) -> None:
    # Telegram clients write /cmd@bot_username in groups; the fake's getMe says quiz_bot.
    assert await h.say(7, "/quiz@quiz_bot", chat=GROUP) == [(GROUP, "What is 6 x 7?")]
    assert await h.say(7, "/exit@other_bot", chat=GROUP) == [(GROUP, "echo: /exit@other_bot")]
    assert await h.say(7, "/exit@Quiz_Bot", chat=GROUP) == [(GROUP, "Bye.")]
    assert len(h.conv.engine) == 0


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


async def test_a_per_user_session_follows_the_user_across_chats(clock: VirtualClock) -> None:
    h = Harness(clock)
    h.conv.command("signup", FORM, per="user")
    assert await h.say(7, "/signup", chat=GROUP) == [(GROUP, "Your name?")]
    assert await h.say(7, "Ada") == [(7, "Hello Ada. How old are you?")]  # in private
    assert await h.say(8, "36", chat=GROUP) == [(GROUP, "echo: 36")]  # someone else
    assert await h.say(7, "36", chat=-1002) == [(-1002, "Ada, 36: saved.")]  # another group
    assert [s.key for s in h.conv.engine.sessions()] == []
    await h.conv.close()
