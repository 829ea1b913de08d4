"""convo_fsm inside NoneBot2 with the OneBot v11 adapter (extra `nonebot`).

In a plugin:

    from convo_fsm.adapters.nonebot import Conversations

    conv = Conversations()                      # an Engine inside (clock=, store=, ...)
    quiz_cmd = conv.command("quiz", quiz)       # an on_command matcher: /quiz starts the spec
    get_driver().on_startup(conv.restore)       # with a store: resume stored sessions

Every `Conversations` routes messages through one NoneBot *event preprocessor*, which runs
before any matcher (the plugins' `on_message`/`on_command`, and the temporary matchers of
`got`/`receive`/waiters): when a session consumes a message, it raises `IgnoredException`, so
no matcher sees it; otherwise NoneBot goes on as if convo_fsm were not there.

Specs see a `ChatEvent`: `ctx.text` is `event.get_plaintext()`, `ctx.event.native` the OneBot
v11 `MessageEvent` (`PrivateMessageEvent` or `GroupMessageEvent`). `ctx.reply` answers
through NoneBot: `bot.send(event, text)` for the chat of the event that caused it, or
`send_group_msg`/`send_private_msg` (the chat the key names, on the bot `get_bot(self_id)`
now connected) for a timer's reply, which also works after a restart. Keys name the bot
account (`onebot.<self_id>`); `per="member"` keys by `user_id` within `group_id` (in a private
chat: per user), `"group"` by `group_id`, `"user"` by `user_id` in any chat.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import nonebot
from nonebot.adapters import Bot as BaseBot
from nonebot.adapters import Event as BaseEvent
from nonebot.adapters.onebot.v11 import (
    Bot,
    GroupMessageEvent,
    Message,
    MessageEvent,
    MessageSegment,
)
from nonebot.exception import IgnoredException
from nonebot.matcher import Matcher
from nonebot.message import event_preprocessor

from convo_fsm.adapters._chat import (
    PER,
    Address,
    ChatAdapter,
    ChatEvent,
    address,
    answers_event,
    by_user,
    check_platform,
)
from convo_fsm.context import Reply
from convo_fsm.session import Session
from convo_fsm.spec import Spec

__all__ = ["PER", "Address", "ChatEvent", "Conversations", "address", "by_user", "event_of"]

logger = logging.getLogger("convo_fsm.adapters")

PLATFORM = "onebot"

# Every live Conversations; one preprocessor serves them all (NoneBot cannot remove one).
_LIVE: weakref.WeakSet[Conversations] = weakref.WeakSet()
_installed = False


def event_of(event: MessageEvent, platform: str = PLATFORM) -> ChatEvent:
    """The `ChatEvent` of a OneBot v11 message event (keys name the bot: `platform.self_id`)."""
    group = str(event.group_id) if isinstance(event, GroupMessageEvent) else None
    return ChatEvent(event.get_plaintext(), str(event.user_id), group,
                     f"{platform}.{event.self_id}", event)


async def _route_first(bot: BaseBot, event: BaseEvent) -> None:
    """NoneBot's event preprocessor: a message a session consumes goes no further."""
    if not isinstance(event, MessageEvent):
        return
    sender = str(event.user_id)
    group = str(event.group_id) if isinstance(event, GroupMessageEvent) else None
    for conv in tuple(_LIVE):
        if (len(conv.engine) and conv.wants(f"{conv.platform}.{event.self_id}", sender, group)
                and await conv.route(event_of(event, conv.platform))):
            raise IgnoredException("consumed by a convo_fsm session")


def _install() -> None:
    global _installed
    if not _installed:
        event_preprocessor(_route_first)
        _installed = True


class Conversations(ChatAdapter):
    """convo_fsm sessions for NoneBot2's OneBot v11 bots."""

    def __init__(self, *, platform: str = PLATFORM, **engine: Any) -> None:
        super().__init__(**engine)
        self.platform = check_platform(platform, ":.")
        self.matchers: list[type[Matcher]] = []
        _install()
        _LIVE.add(self)

    def command(self, name: str, spec: Spec, *, per: str = "member",
                aliases: Iterable[str] = (), priority: int = 1, block: bool = True,
                data: Callable[[MessageEvent], Mapping[str, Any]] | None = None,
                replace: bool = False) -> type[Matcher]:
        """An `on_command` matcher for `name` (and `aliases`, with NoneBot's command
        prefixes) that starts `spec`. `data(event)` gives the session's starting data."""
        self.register(spec)
        self.kind(per)
        matcher = nonebot.on_command(name, aliases=set(aliases) or None, priority=priority,
                                     block=block)

        async def start_command(bot: Bot, event: MessageEvent) -> None:
            await self.start(spec, event, per=per, replace=replace,
                             data=None if data is None else data(event))

        start_command.__name__ = start_command.__qualname__ = f"convo_fsm_{name}"
        matcher.handle()(start_command)
        self.matchers.append(matcher)
        return matcher

    async def start(self, spec: Spec, event: MessageEvent, *, per: str = "member",
                    data: Mapping[str, Any] | None = None,
                    replace: bool = False) -> Session | None:
        """Start `spec` for the chat of `event` (from any handler of yours). None when the
        key already has a live session (`busy_text` is sent)."""
        return await self.start_event(spec, event_of(event, self.platform), per=per,
                                      data=data, replace=replace)

    async def close(self) -> None:
        """Stop routing, send what is queued, close the engine (stored sessions stay)."""
        _LIVE.discard(self)
        await super().close()

    async def send_reply(self, reply: Reply, to: Address) -> None:
        self_id = to.platform.split(".", 1)[1] if "." in to.platform else ""
        bot = nonebot.get_bots().get(self_id)
        if not isinstance(bot, Bot):
            raise RuntimeError(f"no OneBot v11 bot {self_id!r} is connected to send "
                               f"{reply.text!r}")
        native = reply.event.native if isinstance(reply.event, ChatEvent) else None
        if isinstance(native, MessageEvent) and answers_event(reply, to):
            await bot.send(native, reply.text)
        elif to.group:
            await bot.send_group_msg(group_id=int(to.chat),
                                     message=Message(MessageSegment.text(reply.text)))
        else:
            await bot.send_private_msg(user_id=int(to.chat),
                                       message=Message(MessageSegment.text(reply.text)))

