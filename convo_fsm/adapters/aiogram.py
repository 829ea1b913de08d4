"""convo_fsm inside aiogram 3 (extra `aiogram`).

    from aiogram import Bot, Dispatcher
    from convo_fsm.adapters.aiogram import Conversations

    bot = Bot(TOKEN)
    dp = Dispatcher()
    conv = Conversations(bot)                  # an Engine inside (clock=, store=, ...)
    conv.command("quiz", quiz)                 # /quiz starts it: a session per user in a chat
    conv.setup(dp)                             # route messages to sessions before your handlers

    @dp.message()                              # your handlers get what no session takes
    async def echo(message): await message.answer(message.text)

`setup(dp)` registers an outer middleware on `dp.message`, so every message reaches the
sessions before any router's filters and handlers; a message that no session consumes goes
on to them unchanged. It registers the command handlers on `dp` (commands declared later go
there too; aiogram tries a router's handlers in the order they were registered, so call
`setup` before registering your own catch-all handlers on `dp`) and, on a `Dispatcher`,
restores stored sessions at startup and closes the engine at shutdown.

Specs see a `ChatEvent`: `ctx.text` is the message's text (or caption), `ctx.event.native` the
aiogram `Message`. `ctx.reply` answers through aiogram: `message.answer(...)` in the chat of
the message that caused it, or `bot.send_message(chat_id, ...)` (the chat the key names) for
a timer's reply, which also works after a restart. `per="member"` keys by
`message.from_user.id` within `message.chat.id` (in a private chat: per user), `"group"` by
`message.chat.id`, `"user"` by `message.from_user.id` in any chat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message

from convo_fsm.adapters._chat import (
    PER,
    Address,
    ChatAdapter,
    ChatEvent,
    address,
    answers_event,
    by_user,
    check_platform,
    telegram_ids,
    telegram_text,
    without_mention,
)
from convo_fsm.context import Reply
from convo_fsm.session import Session
from convo_fsm.spec import Spec

__all__ = ["PER", "Address", "ChatEvent", "Conversations", "address", "by_user", "event_of",
           "ids"]

PLATFORM = "telegram"


def ids(message: Message) -> tuple[str, str | None] | None:
    """(sender, group) of an aiogram message: group None in a private chat; None when it has
    no sender (a channel post)."""
    who = telegram_ids(message)
    return None if who is None else (str(who[0]), None if who[1] is None else str(who[1]))


def event_of(message: Message, platform: str = PLATFORM,
             username: str | None = None) -> ChatEvent | None:
    """The `ChatEvent` of an aiogram message (None when it has no sender: a channel post).
    `username` (the bot's) is taken off commands: `/exit@my_bot` is `/exit`."""
    who = ids(message)
    if who is None:
        return None
    text = without_mention(telegram_text(message), username)
    return ChatEvent(text, who[0], who[1], platform, message)


class Conversations(ChatAdapter):
    """convo_fsm sessions for one aiogram bot. `bot` sends timer replies (taken from the
    first update if not given; give it to fire timers restored after a restart)."""

    def __init__(self, bot: Bot | None = None, *, platform: str = PLATFORM,
                 **engine: Any) -> None:
        super().__init__(**engine)
        self.bot = bot
        self.platform = check_platform(platform)
        self.router: Router | None = None  # where commands go: the `dp` given to `setup`
        self._pending: list[tuple[str, Callable[[Message], Awaitable[None]]]] = []

    def setup(self, dp: Router) -> None:
        """Route `dp`'s messages to the sessions first; register the commands on `dp`; on a
        Dispatcher, restore at startup and close at shutdown."""
        if self.router is not None:
            raise RuntimeError("Conversations.setup() was already called")
        dp.message.outer_middleware(self.middleware)
        self.router = dp
        for name, handler in self._pending:
            dp.message.register(handler, Command(name))
        self._pending.clear()
        if isinstance(dp, Dispatcher):
            dp.startup.register(self._startup)
            dp.shutdown.register(self.close)

    async def _startup(self, bot: Bot | None = None) -> None:
        if self.bot is None:
            self.bot = bot
        if self.store is not None:
            await self.restore()

    async def middleware(self, handler: Callable[[Any, dict[str, Any]], Awaitable[Any]],
                         message: Any, data: dict[str, Any]) -> Any:
        """An outer middleware for `router.message`: sessions first, then `handler`."""
        if len(self.engine) and isinstance(message, Message):
            who = ids(message)
            if who is not None and self.wants(self.platform, *who):
                bot = data.get("bot")
                if self.bot is None:
                    self.bot = bot
                event = event_of(message, self.platform, await self._username(bot, message))
                if event is not None and await self.route(event):
                    return None  # consumed: handled, no other handler sees it
        return await handler(message, data)

    def command(self, name: str, spec: Spec, *, per: str = "member",
                data: Callable[[Message], Mapping[str, Any]] | None = None,
                replace: bool = False) -> Callable[[Message], Awaitable[None]]:
        """`/name` starts `spec` (a handler with aiogram's `Command` filter, on the `dp` given
        to `setup`). `data(message)` gives the session's starting data."""
        self.register(spec)
        self.kind(per)

        async def start_command(message: Message) -> None:
            await self.start(spec, message, per=per, replace=replace,
                             data=None if data is None else data(message))

        start_command.__name__ = start_command.__qualname__ = f"convo_fsm_{name}"
        if self.router is None:
            self._pending.append((name, start_command))
        else:
            self.router.message.register(start_command, Command(name))
        return start_command

    async def start(self, spec: Spec, message: Message, *, per: str = "member",
                    data: Mapping[str, Any] | None = None,
                    replace: bool = False) -> Session | None:
        """Start `spec` for the chat of `message` (from any handler of yours). None when the
        key already has a live session (`busy_text` is sent) or the message has no sender."""
        if self.bot is None:
            self.bot = message.bot
        event = event_of(message, self.platform, await self._username(message.bot, message))
        if event is None:
            return None
        return await self.start_event(spec, event, per=per, data=data, replace=replace)

    @staticmethod
    async def _username(bot: Bot | None, message: Message) -> str | None:
        """The bot's username, asked of Telegram (`bot.me()`, once per bot) only when a
        command names a bot."""
        text = message.text
        if bot is None or not text or text[0] != "/" or "@" not in text.split(" ", 1)[0]:
            return None
        return (await bot.me()).username

    async def send_reply(self, reply: Reply, to: Address) -> None:
        native = reply.event.native if isinstance(reply.event, ChatEvent) else None
        if isinstance(native, Message) and native.bot and answers_event(reply, to):
            await native.answer(reply.text)
            return
        bot = self.bot
        if bot is None:
            raise RuntimeError("no aiogram Bot to send a timer's reply: "
                               "pass it as Conversations(bot)")
        await bot.send_message(chat_id=int(to.chat), text=reply.text)
