"""convo_fsm inside python-telegram-bot 21+ (extra `ptb`).

    from telegram.ext import Application, MessageHandler, filters
    from convo_fsm.adapters.ptb import Conversations

    app = Application.builder().token(TOKEN).post_init(lambda app: conv.restore()).build()
    conv = Conversations(app)                      # an Engine inside (clock=, store=, ...)
    app.add_handler(conv.command("quiz", quiz))    # a CommandHandler: /quiz starts the spec
    app.add_handler(MessageHandler(filters.TEXT, echo))   # what no session takes

`Conversations(app)` adds one handler to handler group -1 (`ROUTE_GROUP`), which PTB runs
before every other group: when a session consumes the message, it raises
`ApplicationHandlerStop`, so no other handler sees it; otherwise PTB goes on to your groups
as if convo_fsm were not there.

Specs see a `ChatEvent`: `ctx.text` is the message's text (or caption), `ctx.event.native`
PTB's `Update`. `ctx.reply` answers through PTB: `message.reply_text(...)` in the chat of the
update that caused it, or `app.bot.send_message(chat_id, ...)` (the chat the key names) for
a timer's reply, which also works after a restart. `per="member"` keys by
`effective_user.id` within `effective_chat.id` (in a private chat: per user), `"group"` by
the chat, `"user"` by the user in any chat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CallbackContext,
    CommandHandler,
)

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

__all__ = ["PER", "ROUTE_GROUP", "Address", "ChatEvent", "Conversations", "address", "by_user",
           "event_of", "ids"]

PLATFORM = "telegram"
ROUTE_GROUP = -1
"""The handler group of the routing handler: before PTB's default group 0."""

AnyApp = Application[Any, Any, Any, Any, Any, Any]
AnyContext = CallbackContext[Any, Any, Any, Any]


def ids(update: Update) -> tuple[str, str | None] | None:
    """(sender, group) of an update with a new message: group None in a private chat; None
    for other updates, or a message without sender."""
    who = None if update.message is None else telegram_ids(update.message)
    return None if who is None else (str(who[0]), None if who[1] is None else str(who[1]))


def event_of(update: Update, platform: str = PLATFORM,
             username: str | None = None) -> ChatEvent | None:
    """The `ChatEvent` of an update with a new message (None otherwise, or without sender).
    `username` (the bot's) is taken off commands: `/exit@my_bot` is `/exit`."""
    who = ids(update)
    if who is None or update.message is None:
        return None
    text = without_mention(telegram_text(update.message), username)
    return ChatEvent(text, who[0], who[1], platform, update)


class _Route(BaseHandler[Update, AnyContext, None]):
    """Group -1: a message a session consumes stops there (`ApplicationHandlerStop`)."""

    __slots__ = ("conv",)

    def __init__(self, conv: Conversations) -> None:
        super().__init__(self._unused, block=True)
        self.conv = conv

    @staticmethod
    async def _unused(update: Update, context: AnyContext) -> None:  # pragma: no cover
        """(BaseHandler wants a callback; `handle_update` does the work.)"""

    def check_update(self, update: object) -> ChatEvent | None:
        conv = self.conv
        if not len(conv.engine) or not isinstance(update, Update):
            return None
        message = update.message
        who = None if message is None else telegram_ids(message)  # (ints: keys format them
        if who is None or not conv.wants(conv.platform, *who):  # as they format ids' str)
            return None  # nobody's: PTB goes on to the other groups at once
        return event_of(update, conv.platform, conv.username())

    async def handle_update(self, update: Update, application: AnyApp, check_result: object,
                            context: AnyContext) -> None:
        assert isinstance(check_result, ChatEvent)
        if await self.conv.route(check_result):
            raise ApplicationHandlerStop


class Conversations(ChatAdapter):
    """convo_fsm sessions for one PTB `Application` (its bot sends the timer replies)."""

    def __init__(self, app: AnyApp, *, platform: str = PLATFORM, group: int = ROUTE_GROUP,
                 **engine: Any) -> None:
        super().__init__(**engine)
        self.app = app
        self.platform = check_platform(platform)
        self.handler = _Route(self)
        app.add_handler(self.handler, group=group)

    def command(self, name: str, spec: Spec, *, per: str = "member",
                data: Callable[[Update, AnyContext], Mapping[str, Any]] | None = None,
                replace: bool = False) -> CommandHandler[AnyContext, None]:
        """A `CommandHandler` for `/name` that starts `spec` (add it with `app.add_handler`).
        `data(update, context)` gives the session's starting data."""
        self.register(spec)
        self.kind(per)

        async def start_command(update: Update, context: AnyContext) -> None:
            await self.start(spec, update, per=per, replace=replace,
                             data=None if data is None else data(update, context))

        start_command.__name__ = start_command.__qualname__ = f"convo_fsm_{name}"
        return CommandHandler(name, start_command)

    async def start(self, spec: Spec, update: Update, *, per: str = "member",
                    data: Mapping[str, Any] | None = None,
                    replace: bool = False) -> Session | None:
        """Start `spec` for the chat of `update` (from any handler of yours). None when the
        key already has a live session (`busy_text` is sent) or the update has no message."""
        event = event_of(update, self.platform, self.username())
        if event is None:
            return None
        return await self.start_event(spec, event, per=per, data=data, replace=replace)

    def username(self) -> str | None:
        """The bot's username (known once `Application.initialize()` has asked `getMe`)."""
        try:
            name = self.app.bot.username
        except RuntimeError:  # not initialised yet
            return None
        return name if isinstance(name, str) else None

    async def send_reply(self, reply: Reply, to: Address) -> None:
        native = reply.event.native if isinstance(reply.event, ChatEvent) else None
        if isinstance(native, Update) and native.message is not None \
                and answers_event(reply, to):
            await native.message.reply_text(reply.text, do_quote=False)
            return
        await self.app.bot.send_message(chat_id=int(to.chat), text=reply.text)
