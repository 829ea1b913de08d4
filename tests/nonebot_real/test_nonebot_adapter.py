"""convo_fsm.adapters.nonebot inside real NoneBot2 + OneBot v11, through NoneBug.

Events go through NoneBot's `handle_event` (event preprocessors, then every matcher by
priority) via NoneBug's `ctx.receive_event`; every reply must be an expected
`ctx.should_call_send` (a reply through `bot.send(event, ...)`) or `ctx.should_call_api`
(a timer's `send_private_msg`/`send_group_msg`), in order, and one not expected fails the
test. Time is a `VirtualClock`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from chat_specs import COUNTER, FORM, FRAGILE, QUIZ
from nonebot import on_message
from nonebot.adapters.onebot.v11 import (
    Bot,
    GroupMessageEvent,
    Message,
    MessageEvent,
    PrivateMessageEvent,
)
from nonebot.adapters.onebot.v11.event import Sender
from nonebot.matcher import Matcher
from nonebug import App

from convo_fsm import Ended, VirtualClock
from convo_fsm.adapters.nonebot import ChatEvent, Conversations
from convo_fsm.storage import SqliteStore

SELF = "10000"
GROUP = 555
_ids = itertools.count(1)
OK = {"message_id": 1}


def private(user: int, text: str) -> PrivateMessageEvent:
    return PrivateMessageEvent(
        time=0, self_id=int(SELF), post_type="message", sub_type="friend", user_id=user,
        message_type="private", message_id=next(_ids), message=Message(text),
        original_message=Message(text), raw_message=text, font=0,
        sender=Sender(user_id=user, nickname=f"u{user}"), to_me=True)


def group(user: int, text: str, gid: int = GROUP) -> GroupMessageEvent:
    return GroupMessageEvent(
        time=0, self_id=int(SELF), post_type="message", sub_type="normal", user_id=user,
        message_type="group", group_id=gid, message_id=next(_ids), message=Message(text),
        original_message=Message(text), raw_message=text, font=0,
        sender=Sender(user_id=user, nickname=f"u{user}"), to_me=False)


class Bot_:
    """The plugin under test: convo_fsm commands, and an ordinary echo matcher."""

    def __init__(self, clock: VirtualClock, **engine: Any) -> None:
        self.conv = Conversations(clock=clock, **engine)
        self.conv.command("quiz", QUIZ)
        self.conv.command("form", FORM)
        self.conv.command("count", COUNTER, per="group")
        self.conv.command("fragile", FRAGILE)
        self.ordinary: list[str] = []
        self.destroyed = False
        self.echo = on_message(priority=10)

        @self.echo.handle()
        async def echo(matcher: Matcher, event: MessageEvent) -> None:
            self.ordinary.append(event.get_plaintext())
            await matcher.send(f"echo: {event.get_plaintext()}")

    def matchers(self) -> list[type[Matcher]]:
        return [*self.conv.matchers, self.echo]

    def destroy(self) -> None:
        """Unregister the plugin's matchers (NoneBot keeps them for the whole process)."""
        if not self.destroyed:
            for m in self.matchers():
                m.destroy()
            self.destroyed = True


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Bot_]]:
    """Makes plugins; at the end, closes them (even after a failure) and drops their matchers,
    so no test sees another's sessions or commands."""
    made: list[Bot_] = []

    def factory(clock: VirtualClock, **engine: Any) -> Bot_:
        made.append(Bot_(clock, **engine))
        return made[-1]

    yield factory
    for b in made:
        b.destroy()
        await b.conv.close()


class Chat:
    """One NoneBug context: say things, expect the bot's answers."""

    def __init__(self, app: App, plugin: Bot_) -> None:
        self.app, self.plugin = app, plugin

    async def say(self, event: MessageEvent, *answers: str) -> None:
        async with self.app.test_matcher(self.plugin.matchers()) as ctx:
            bot = ctx.create_bot(base=Bot, self_id=SELF)
            ctx.receive_event(bot, event)
            for text in answers:
                ctx.should_call_send(event, text, result=OK)

    async def wait(self, clock: VirtualClock, seconds: float,
                   *calls: tuple[str, dict[str, Any]]) -> None:
        async with self.app.test_api() as ctx:
            ctx.create_bot(base=Bot, self_id=SELF)
            for api, data in calls:
                ctx.should_call_api(api, data, result=OK)
            await clock.advance(seconds)
            await self.plugin.conv.drain()


def to_user(user: int, text: str) -> tuple[str, dict[str, Any]]:
    return "send_private_msg", {"user_id": user, "message": Message(text)}


def to_group(gid: int, text: str) -> tuple[str, dict[str, Any]]:
    return "send_group_msg", {"group_id": gid, "message": Message(text)}


async def test_a_command_starts_the_spec_and_later_messages_reach_it(
        app: App, make: Callable[..., Bot_]) -> None:
    plugin = make(VirtualClock())
    chat = Chat(app, plugin)
    await chat.say(private(7, "/quiz"), "What is 6 x 7?")
    await chat.say(private(7, "41"), "No, try again.")
    await chat.say(private(7, "42"), "Right!", "Thanks for playing.")
    assert plugin.ordinary == [] and len(plugin.conv.engine) == 0
    await chat.say(private(7, "42"), "echo: 42")  # over: the ordinary matcher again
    assert plugin.ordinary == ["42"]
    await plugin.conv.close()


async def test_a_second_start_on_a_busy_key_says_so(app: App,
                                                    make: Callable[..., Bot_]) -> None:
    plugin = make(VirtualClock())
    chat = Chat(app, plugin)
    await chat.say(private(7, "/quiz"), "What is 6 x 7?")
    await chat.say(private(7, "/form"), "A quiz conversation is already running here.")
    await plugin.conv.close()


async def test_a_multi_step_form_sees_the_native_event(app: App,
                                                      make: Callable[..., Bot_]) -> None:
    plugin = make(VirtualClock())
    chat = Chat(app, plugin)
    key = f"onebot.{SELF}:user:7"
    await chat.say(private(7, "/form"), "Your name?")
    await chat.say(private(7, "Ada"), "Hello Ada. How old are you?")
    await chat.say(private(7, "old"), "A number, please.")
    session = plugin.conv.engine.session(key)
    assert session is not None and session.state == "age"
    assert session.data == {"name": "Ada", "native": "PrivateMessageEvent"}
    ended = plugin.conv.engine.wait_ended(key)
    await chat.say(private(7, "36"), "Ada, 36: saved.")
    assert (await ended).reason == "final" and (await ended).session.data["age"] == 36
    await plugin.conv.close()


async def test_a_warning_then_a_timeout_moving_to_another_state(
        app: App, make: Callable[..., Bot_]) -> None:
    clock = VirtualClock()
    plugin = make(clock)
    chat = Chat(app, plugin)
    await chat.say(private(7, "/quiz"), "What is 6 x 7?")
    await chat.wait(clock, 19)
    await chat.wait(clock, 1, to_user(7, "10 s left"))
    await chat.wait(clock, 10, to_user(7, "Still there? One more chance."))
    session = plugin.conv.engine.session(f"onebot.{SELF}:user:7")
    assert session is not None and session.state == "reminded"
    await chat.say(private(7, "hello"), "echo: hello")  # only 42 is taken in "reminded"
    await chat.wait(clock, 30, to_user(7, "Time's up: it was 42."))
    assert len(plugin.conv.engine) == 0
    await plugin.conv.close()


async def test_messages_no_session_wants_reach_the_ordinary_matchers(
        app: App, make: Callable[..., Bot_]) -> None:
    plugin = make(VirtualClock())
    chat = Chat(app, plugin)
    await chat.say(private(8, "hi"), "echo: hi")
    await chat.say(private(7, "/quiz"), "What is 6 x 7?")
    await chat.say(private(8, "hi again"), "echo: hi again")
    await chat.say(group(7, "hi"), "echo: hi")  # the same user in a group: not the quiz
    assert plugin.ordinary == ["hi", "hi again", "hi"]
    await plugin.conv.close()


async def test_two_users_in_one_group_are_kept_apart(app: App,
                                                    make: Callable[..., Bot_]) -> None:
    clock = VirtualClock()
    plugin = make(clock)
    chat = Chat(app, plugin)
    await chat.say(group(7, "/quiz"), "What is 6 x 7?")
    await chat.say(group(8, "/form"), "Your name?")
    await chat.say(group(8, "Bob"), "Hello Bob. How old are you?")
    await chat.say(group(7, "41"), "No, try again.")
    keys = sorted(s.key for s in plugin.conv.engine.sessions())
    assert keys == [f"onebot.{SELF}:group:{GROUP}:7", f"onebot.{SELF}:group:{GROUP}:8"]
    await chat.say(group(9, "42"), "echo: 42")  # a third member: nobody's session
    # A member's timer talks to the group.
    await chat.wait(clock, 20, to_group(GROUP, "10 s left"))
    await plugin.conv.close()


async def test_a_group_wide_session_is_shared_by_the_chat(app: App,
                                                         make: Callable[..., Bot_]) -> None:
    plugin = make(VirtualClock())
    chat = Chat(app, plugin)
    await chat.say(group(7, "/count"), "Counting.")
    await chat.say(group(8, "a"), "a (1)")
    await chat.say(group(9, "b"), "b (2)")
    await chat.say(private(8, "c"), "echo: c")
    await chat.say(group(7, "/end"), "Done.")
    assert len(plugin.conv.engine) == 0
    await plugin.conv.close()


async def test_an_action_error_ends_only_its_session(app: App,
                                                    make: Callable[..., Bot_]) -> None:
    ended: list[Ended] = []
    plugin = make(VirtualClock(), on_end=ended.append)
    chat = Chat(app, plugin)
    await chat.say(private(7, "/fragile"), "Ready.")
    await chat.say(private(8, "/quiz"), "What is 6 x 7?")
    await chat.say(private(7, "x"), "fine")
    await chat.say(private(7, "boom"))  # consumed, no answer; the session ends with "error"
    assert [(e.session.key, e.reason) for e in ended] == [(f"onebot.{SELF}:user:7", "error")]
    assert isinstance(ended[0].error, RuntimeError)
    await chat.say(private(7, "x"), "echo: x")
    await chat.say(private(8, "42"), "Right!", "Thanks for playing.")
    await plugin.conv.close()


async def test_a_restart_with_sqlite_resumes_the_conversation_and_its_timers(
        app: App, make: Callable[..., Bot_], tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    clock = VirtualClock(1_000.0)
    first = make(clock, store=SqliteStore(db))
    chat = Chat(app, first)
    await chat.say(private(7, "/quiz"), "What is 6 x 7?")
    await chat.say(private(8, "/form"), "Your name?")
    await chat.say(private(8, "Ada"), "Hello Ada. How old are you?")
    await first.conv.close()
    first.destroy()

    clock2 = VirtualClock(1_022.0)  # 22 s after the start: user 7's warning fell due
    second = make(clock2, store=SqliteStore(db))
    chat = Chat(app, second)
    async with app.test_api() as ctx:
        ctx.create_bot(base=Bot, self_id=SELF)
        ctx.should_call_api(*to_user(7, "10 s left"), result=OK)
        live = await second.conv.restore()
        await second.conv.drain()
    assert sorted(s.key for s in live) == [f"onebot.{SELF}:user:7", f"onebot.{SELF}:user:8"]
    await chat.wait(clock2, 8, to_user(7, "Still there? One more chance."))
    await chat.say(private(8, "36"), "Ada, 36: saved.")
    await chat.say(private(7, "42"), "Thanks for playing.")
    assert len(second.conv.engine) == 0
    await second.conv.close()
    assert await SqliteStore(db).list() == []


async def test_the_spec_gets_a_chat_event_around_the_native_event(
        app: App, make: Callable[..., Bot_]) -> None:
    seen: list[Any] = []
    plugin = make(VirtualClock(),
                  trace=lambda r: seen.append(r.event) if r.kind == "event" else None)
    chat = Chat(app, plugin)
    await chat.say(group(7, "/form"), "Your name?")
    await chat.say(group(7, "Ada"), "Hello Ada. How old are you?")
    (event,) = seen
    assert isinstance(event, ChatEvent)
    assert (event.text, event.sender, event.group) == ("Ada", "7", str(GROUP))
    assert isinstance(event.native, GroupMessageEvent) and event.native.group_id == GROUP
    await plugin.conv.close()


async def test_the_readme_example_bot(app: App) -> None:
    """examples/nonebot_signup.py's `build`, as README shows it, on a virtual clock."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    import nonebot_signup
    from nonebot.matcher import matchers

    before = {m for ms in matchers.values() for m in ms}
    clock = VirtualClock()
    conv = Conversations(clock=clock)
    nonebot_signup.build(conv)
    mine = [m for ms in matchers.values() for m in ms if m not in before]
    try:
        async def say(event: MessageEvent, *answers: str) -> None:
            async with app.test_matcher(mine) as ctx:
                bot = ctx.create_bot(base=Bot, self_id=SELF)
                ctx.receive_event(bot, event)
                for text in answers:
                    ctx.should_call_send(event, text, result=OK)

        await say(private(7, "/signup"), "Your name?")
        await say(private(7, "Ada"), "Hi Ada! How old are you?")
        await say(private(7, "old"), "A number, please.")
        await say(private(8, "hello"), "You said: hello")
        async with app.test_api() as ctx:
            ctx.create_bot(base=Bot, self_id=SELF)
            ctx.should_call_api(*to_user(7, "15 s left to give your age."), result=OK)
            ctx.should_call_api(*to_user(7, "Saved without an age."), result=OK)
            await clock.advance(60)
            await conv.drain()
        await say(group(7, "/signup"), "Your name?")
        await say(group(7, "/cancel"), "Cancelled.")
    finally:
        for m in mine:
            m.destroy()
        await conv.close()


async def test_a_per_user_session_follows_the_user_across_chats(
        app: App, make: Callable[..., Bot_]) -> None:
    clock = VirtualClock()
    plugin = make(clock)
    plugin.conv.command("signup", FORM, per="user")  # (in plugin.matchers(): conv.matchers)
    chat = Chat(app, plugin)
    await chat.say(group(7, "/signup"), "Your name?")  # answered where the user wrote
    await chat.say(private(7, "Ada"), "Hello Ada. How old are you?")
    await chat.say(group(8, "36"), "echo: 36")  # someone else in the group
    await chat.say(group(7, "36", gid=556), "Ada, 36: saved.")  # another group
    assert len(plugin.conv.engine) == 0
    await plugin.conv.close()
