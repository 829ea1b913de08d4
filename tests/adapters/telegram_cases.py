"""The conversation scenarios both Telegram adapters (aiogram 3 and python-telegram-bot) must
pass, written once against a harness: each test module subclasses `TelegramCases` as a
`Test...` class and gives the fixtures `open_harness` (an opened harness for a clock and the
engine's options), `h` (one opened for `clock`), `clock` and `native_type` (the name of the
native object the adapter hands `ctx.event.native`: aiogram's Message, PTB's Update)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
from chat_specs import FORM, QUIZ

from convo_fsm import Ended, VirtualClock
from convo_fsm.storage import SqliteStore

GROUP = -1001


class Harness(Protocol):
    conv: Any
    session: Any
    ordinary: list[str]

    async def say(self, user: int, text: str, chat: int | None = None) -> list[tuple[int, str]]:
        ...

    async def advance(self, clock: VirtualClock, seconds: float) -> list[tuple[int, str]]: ...

    async def close(self) -> None: ...

    def command(self, name: str, spec: Any, per: str) -> None:
        """One more `/name` command, registered the framework's way."""


Opener = Callable[..., Awaitable[Any]]


class TelegramCases:
    async def test_a_command_starts_the_spec_and_later_messages_reach_it(self, h: Harness) -> None:
        assert await h.say(7, "/quiz") == [(7, "What is 6 x 7?")]
        assert await h.say(7, "41") == [(7, "No, try again.")]
        assert await h.say(7, "42") == [(7, "Right!"), (7, "Thanks for playing.")]
        assert len(h.conv.engine) == 0
        assert h.ordinary == []  # the session took every message
        assert await h.say(7, "42") == [(7, "echo: 42")]  # over: the bot's own handler again
        assert h.ordinary == ["42"]

    async def test_a_second_start_on_a_busy_key_says_so(self, h: Harness) -> None:
        await h.say(7, "/quiz")
        assert await h.say(7, "/form") == [(7, "A quiz conversation is already running here.")]
        assert h.conv.engine.session("telegram:user:7").spec == "quiz"

    async def test_a_multi_step_form_sees_the_native_message(self, h: Harness,
                                                             native_type: str) -> None:
        assert await h.say(7, "/form") == [(7, "Your name?")]
        assert await h.say(7, "Ada") == [(7, "Hello Ada. How old are you?")]
        assert await h.say(7, "old") == [(7, "A number, please.")]
        session = h.conv.engine.session("telegram:user:7")
        assert session is not None and session.state == "age"
        assert session.data == {"name": "Ada", "native": native_type}
        ended = h.conv.engine.wait_ended("telegram:user:7")
        assert await h.say(7, "36") == [(7, "Ada, 36: saved.")]
        assert (await ended).reason == "final"
        assert (await ended).session.data["age"] == 36

    async def test_a_warning_then_a_timeout_moving_to_another_state(
            self, h: Harness, clock: VirtualClock) -> None:
        await h.say(7, "/quiz")
        assert await h.advance(clock, 19) == []
        assert await h.advance(clock, 1) == [(7, "10 s left")]
        assert await h.advance(clock, 10) == [(7, "Still there? One more chance.")]
        assert h.conv.engine.session("telegram:user:7").state == "reminded"
        # In "reminded" only 42 is taken: anything else reaches the ordinary handler.
        assert await h.say(7, "hello") == [(7, "echo: hello")]
        assert await h.advance(clock, 30) == [(7, "Time's up: it was 42.")]
        assert len(h.conv.engine) == 0

    async def test_messages_no_session_wants_reach_the_ordinary_handlers(self, h: Harness) -> None:
        assert await h.say(8, "hi") == [(8, "echo: hi")]  # no session at all
        await h.say(7, "/quiz")
        assert await h.say(8, "hi again") == [(8, "echo: hi again")]  # another user's session
        assert await h.say(7, "hi", chat=GROUP) == [(GROUP, "echo: hi")]  # same user, other chat
        assert h.ordinary == ["hi", "hi again", "hi"]

    async def test_two_users_in_one_group_are_kept_apart(self, h: Harness) -> None:
        assert await h.say(7, "/quiz", chat=GROUP) == [(GROUP, "What is 6 x 7?")]
        assert await h.say(8, "/form", chat=GROUP) == [(GROUP, "Your name?")]
        assert await h.say(8, "Bob", chat=GROUP) == [(GROUP, "Hello Bob. How old are you?")]
        assert await h.say(7, "41", chat=GROUP) == [(GROUP, "No, try again.")]
        keys = sorted(s.key for s in h.conv.engine.sessions())
        assert keys == [f"telegram:group:{GROUP}:7", f"telegram:group:{GROUP}:8"]
        assert await h.say(9, "42", chat=GROUP) == [(GROUP, "echo: 42")]  # a third member

    async def test_a_group_wide_session_is_shared_by_the_chat(self, h: Harness) -> None:
        assert await h.say(7, "/count", chat=GROUP) == [(GROUP, "Counting.")]
        assert await h.say(8, "a", chat=GROUP) == [(GROUP, "a (1)")]
        assert await h.say(9, "b", chat=GROUP) == [(GROUP, "b (2)")]
        assert await h.say(8, "c") == [(8, "echo: c")]  # the member in private: not the group's
        assert await h.say(7, "/end", chat=GROUP) == [(GROUP, "Done.")]
        assert [s.key for s in h.conv.engine.sessions()] == []

    async def test_an_action_error_ends_only_its_session(self, clock: VirtualClock,
                                                         open_harness: Opener) -> None:
        ended: list[Ended] = []
        h = await open_harness(clock, on_end=ended.append)
        await h.say(7, "/fragile")
        await h.say(8, "/quiz")
        assert await h.say(7, "x") == [(7, "fine")]
        assert await h.say(7, "boom") == []  # consumed; the session ends with reason "error"
        assert [(e.session.key, e.reason) for e in ended] == [("telegram:user:7", "error")]
        assert isinstance(ended[0].error, RuntimeError)
        assert await h.say(7, "x") == [(7, "echo: x")]  # the bot goes on
        assert await h.say(8, "42") == [(8, "Right!"), (8, "Thanks for playing.")]
        await h.close()

    async def test_a_restart_with_sqlite_resumes_the_conversation_and_its_timers(
            self, tmp_path: Path, open_harness: Opener) -> None:
        db = tmp_path / "sessions.db"
        clock = VirtualClock(1_000.0)
        first = await open_harness(clock, store=SqliteStore(db))
        await first.say(7, "/quiz")
        await first.say(8, "/form")
        await first.say(8, "Ada")
        await first.advance(clock, 5)
        await first.close()  # the process goes away; the sessions stay stored

        # A new process, 22 s after the start: user 7's warning (at 20 s) fell due meanwhile.
        clock2 = VirtualClock(1_022.0)
        second = await open_harness(clock2, store=SqliteStore(db))
        live = await second.conv.restore()
        assert sorted(s.key for s in live) == ["telegram:user:7", "telegram:user:8"]
        # Fired at once, through the bot (no event in memory: the chat comes from the key).
        assert second.session.sent() == [(7, "10 s left")]
        assert await second.advance(clock2, 8) == [(7, "Still there? One more chance.")]
        assert await second.say(8, "36") == [(8, "Ada, 36: saved.")]
        assert await second.say(7, "42") == [(7, "Thanks for playing.")]
        assert len(second.conv.engine) == 0
        await second.close()
        assert await SqliteStore(db).list() == []

    async def test_the_spec_gets_a_chat_event_around_the_native_message(
            self, clock: VirtualClock, open_harness: Opener, native_type: str) -> None:
        seen: list[Any] = []
        h = await open_harness(
            clock, trace=lambda r: seen.append(r.event) if r.kind == "event" else None)
        await h.say(7, "/form", chat=GROUP)
        await h.say(7, "Ada", chat=GROUP)
        await h.close()
        (event,) = seen
        assert type(event).__name__ == "ChatEvent"
        assert (event.text, event.sender, event.group) == ("Ada", "7", str(GROUP))
        assert type(event.native).__name__ == native_type
        chat = getattr(event.native, "chat", None) or event.native.effective_chat
        assert chat.id == GROUP

    async def test_bad_per_is_a_clear_error(self, h: Harness) -> None:
        with pytest.raises(ValueError, match="per must be one of"):
            h.conv.command("x", QUIZ, per="room")

    async def test_commands_naming_this_bot_reach_the_spec(self, h: Harness) -> None:
        # Telegram clients write /cmd@bot_username in groups; the fake's getMe says quiz_bot.
        assert await h.say(7, "/quiz@quiz_bot", chat=GROUP) == [(GROUP, "What is 6 x 7?")]
        assert await h.say(7, "/exit@other_bot", chat=GROUP) == [
            (GROUP, "echo: /exit@other_bot")]
        assert await h.say(7, "/exit@Quiz_Bot", chat=GROUP) == [(GROUP, "Bye.")]
        assert len(h.conv.engine) == 0

    async def test_a_per_user_session_follows_the_user_across_chats(
            self, clock: VirtualClock, open_harness: Opener) -> None:
        h = await open_harness(clock)
        h.command("signup", FORM, per="user")
        assert await h.say(7, "/signup", chat=GROUP) == [(GROUP, "Your name?")]
        assert await h.say(7, "Ada") == [(7, "Hello Ada. How old are you?")]  # in private
        assert await h.say(8, "36", chat=GROUP) == [(GROUP, "echo: 36")]  # someone else
        assert await h.say(7, "36", chat=-1002) == [(-1002, "Ada, 36: saved.")]  # another group
        assert [s.key for s in h.conv.engine.sessions()] == []
        await h.close()
