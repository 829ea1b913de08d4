"""What the chat-framework adapters (aiogram, python-telegram-bot, NoneBot2) share.

Each adapter turns its framework's message into a `ChatEvent` (text, sender, chat, platform
and the framework's own object as `native`), keys it with the engine's filters, and sends
replies back through the framework. This module holds the rules that are the same for all
three, so each is written once:

- **Keys.** `per="member"` (one session per user within a chat; in a private chat, per user),
  `"group"` (one per chat, shared by everyone in it) and `"user"` (one per user, whatever the
  chat). They are `platform:user:U`, `platform:group:G:U`, `platform:group:G` and
  `platform:sender:U`: every key names the chat it talks to, so a timer's reply finds its
  chat from the key alone, also after a restart, when no event is in memory (`Address`).
- **Routing.** `route(event)` gives the event to the engine; False means no session took
  it, and the adapter lets the framework's other handlers have it.
- **Replies, in order, per chat.** `ctx.reply`/`ctx.send` queue a reply for its key; one task
  per key with replies in flight sends them one after another through the framework
  (`send_reply`), so a chat never sees two replies swapped, and chats never wait for each
  other. `route` and `start` return once the replies they caused are sent, as a framework's
  own handler that awaits its send would; `drain()` waits for the rest (timer replies).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from convo_fsm.clock import Clock
from convo_fsm.context import Reply
from convo_fsm.engine import Ended, Engine, SessionExists, TraceRecord
from convo_fsm.message import Filter
from convo_fsm.session import Session
from convo_fsm.spec import EventError, Spec
from convo_fsm.storage.base import Policy, Store

__all__ = [
    "KEYS",
    "PER",
    "Address",
    "ChatAdapter",
    "ChatEvent",
    "address",
    "answers_event",
    "by_group",
    "by_member",
    "by_user",
    "check_platform",
    "group_key",
    "member_key",
    "telegram_ids",
    "telegram_text",
    "user_key",
    "without_mention",
]

logger = logging.getLogger("convo_fsm.adapters")

BUSY_TEXT = "A {spec} conversation is already running here."


@attrs.frozen(slots=True)
class ChatEvent:
    """A framework's message as convo_fsm sees it: `text` (what the spec classifies), `sender`
    and `group` (None in a private chat) from the framework's own ids, and `native`, the
    framework's own object (aiogram `Message`, PTB `Update`, NoneBot `MessageEvent`)."""

    text: str
    sender: str
    group: str | None
    platform: str
    native: Any = attrs.field(eq=False, repr=False)


def without_mention(text: str, username: str | None) -> str:
    """`/cmd@username args` -> `/cmd args` when `username` is this bot's (Telegram clients
    add the bot's name to commands in groups), so the spec sees the command it declares."""
    if not username or not text.startswith("/"):
        return text
    head, sep, rest = text.partition(" ")
    cmd, at, mention = head.partition("@")
    if at and mention.lower() == username.lower():
        return cmd + sep + rest
    return text


def check_platform(platform: object, forbidden: str = ":") -> str:
    """`platform`, a non-empty name without the characters of `forbidden` (they separate the
    parts of a session key); else `ValueError`."""
    if not isinstance(platform, str) or not platform or any(c in platform for c in forbidden):
        shown = " or ".join(repr(c) for c in forbidden)
        raise ValueError(f"platform must be a non-empty name without {shown}, got {platform!r}")
    return platform


# Telegram's message model, the same in aiogram and python-telegram-bot.
def telegram_ids(message: Any) -> tuple[int, int | None] | None:
    """(sender id, group id) of a Telegram message: the user who wrote it, or the chat it was
    sent on behalf of; group None in a private chat. None without a sender (a channel post)."""
    user = message.from_user
    if user is not None:
        sender: int = user.id
    elif message.sender_chat is not None:
        sender = message.sender_chat.id
    else:
        return None
    chat = message.chat
    return sender, None if chat.type == "private" else chat.id


def telegram_text(message: Any) -> str:
    """A Telegram message's text, or the caption of a photo or file ('' if neither)."""
    return message.text if message.text is not None else (message.caption or "")


def member_key(platform: str, sender: str | int, group: str | int | None) -> str:
    """One session per user within a chat (in a private chat: per user)."""
    if group is None:
        return f"{platform}:user:{sender}"
    return f"{platform}:group:{group}:{sender}"


def group_key(platform: str, sender: str | int, group: str | int | None) -> str:
    """One session per chat, shared by everyone in it (in a private chat: per user)."""
    if group is None:
        return f"{platform}:user:{sender}"
    return f"{platform}:group:{group}"


def user_key(platform: str, sender: str | int, group: str | int | None) -> str:
    """One session per user, whatever the chat (its timers talk to the user privately)."""
    return f"{platform}:sender:{sender}"


KeyFn = Callable[[str, str | int, str | int | None], str]
KEYS: Mapping[str, KeyFn] = {
    "member": member_key, "group": group_key, "user": user_key}
"""The `per=` choices: the key of (platform, sender, group) for each (ids as str, or as the
int a framework gives: the key is the same)."""


def by_member(event: ChatEvent) -> str:
    return member_key(event.platform, event.sender, event.group)


def by_group(event: ChatEvent) -> str:
    return group_key(event.platform, event.sender, event.group)


def by_user(event: ChatEvent) -> str:
    return user_key(event.platform, event.sender, event.group)


PER: Mapping[str, Filter] = {"member": by_member, "group": by_group, "user": by_user}
"""The engine filter of each `per=` choice (in the order `dispatch` tries them)."""


@attrs.frozen
class Address:
    """Where a key's replies go: `chat` (a group id, or the user's id for a private chat)."""

    platform: str
    chat: str
    group: bool
    user: str | None
    anywhere: bool = False  # a per-user key: the user in any chat (timers: privately)


def address(key: str) -> Address:
    """The chat a key talks to (the inverse of the `PER` filters)."""
    parts = key.split(":")
    if len(parts) == 3 and parts[1] in ("user", "sender"):
        return Address(parts[0], parts[2], False, parts[2], parts[1] == "sender")
    if len(parts) in (3, 4) and parts[1] == "group":
        return Address(parts[0], parts[2], True, parts[3] if len(parts) == 4 else None)
    raise ValueError(f"key {key!r} is not a chat key (platform:user:U, platform:group:G[:U] "
                     "or platform:sender:U)")


def answers_event(reply: Reply, to: Address) -> bool:
    """Whether `reply` goes out in the chat of the event that caused it (with the framework's
    reply to that event): the event's chat is the key's, or the key is the per-user key of
    the event's sender (a per-user session answers where the user wrote). Otherwise (a
    timer's reply, `ctx.send` to another chat) it goes to the chat the key names."""
    ev = reply.event
    if not isinstance(ev, ChatEvent) or ev.platform != to.platform:
        return False
    if to.anywhere:
        return ev.sender == to.user
    if ev.group is None:
        return not to.group and ev.sender == to.chat
    return to.group and ev.group == to.chat


class ChatAdapter(abc.ABC):
    """An engine whose events are `ChatEvent`s and whose replies go out through a framework.

    Subclasses wrap the framework's messages (`ChatEvent`) and implement `send_reply`.
    Engine options (`clock`, `store`, `on_end`, `on_error`, `trace`, `max_sessions`) are
    passed on; the engine is `self.engine`.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        on_end: Callable[[Ended], object] | None = None,
        on_error: Callable[[str, BaseException], object] | None = None,
        trace: Callable[[TraceRecord], object] | None = None,
        max_sessions: int = 2_000_000,
        busy_text: str = BUSY_TEXT,
    ) -> None:
        self.engine = Engine(clock=clock, store=store, on_end=on_end, on_error=on_error,
                             trace=trace, max_sessions=max_sessions, send=self._emit,
                             filters={"member": by_member, "group": by_group})
        self._keys: tuple[KeyFn, ...] = ()
        self._private: tuple[KeyFn, ...] = ()  # the same, less those giving one key in private
        for per in ("member", "group"):
            self.kind(per)
        self.store = store
        self.busy_text = busy_text
        self._specs: dict[str, Spec] = {}
        self._queues: dict[str, deque[Reply]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    # -- what each framework provides ----------------------------------------------------
    @abc.abstractmethod
    async def send_reply(self, reply: Reply, to: Address) -> None:
        """Send `reply.text` to the chat `to` through the framework (`reply.event` is the
        `ChatEvent` that caused it, or None for a timer's reply)."""

    # -- sessions ----------------------------------------------------------------------------
    def kind(self, per: str) -> str:
        """The engine's filter kind for `per` ("member", "group" or "user"), registered on
        first use."""
        fn = PER.get(per)
        if fn is None:
            raise ValueError(f"per must be one of {sorted(PER)}, got {per!r}")
        self.engine.add_filter(per, fn)  # a no-op once registered
        key = KEYS[per]
        if key not in self._keys:
            self._keys = (*self._keys, key)
            # In a private chat, member and group keys are one key: look it up once.
            if all(k("p", "s", None) != key("p", "s", None) for k in self._private):
                self._private = (*self._private, key)
        return per

    def wants(self, platform: str, sender: str | int, group: str | int | None) -> bool:
        """Whether a live session has a key of this sender in this chat: the cheap test an
        adapter makes before building a `ChatEvent` (most messages are nobody's)."""
        sessions = self.engine
        for key in self._keys if group is not None else self._private:
            if key(platform, sender, group) in sessions:
                return True
        return False

    def register(self, spec: Spec) -> Spec:
        """Know `spec` (for `restore`); the same name twice must be the same spec."""
        if not isinstance(spec, Spec):
            raise TypeError(f"expected a convo_fsm Spec, got {type(spec).__name__}")
        known = self._specs.setdefault(spec.name, spec)
        if known is not spec:
            raise ValueError(f"another spec named {spec.name!r} is already registered")
        return spec

    async def start_event(self, spec: Spec, event: ChatEvent, *, per: str = "member",
                          data: Mapping[str, Any] | None = None,
                          replace: bool = False) -> Session | None:
        """Start `spec` for the chat of `event`, keyed `per` member, group or user. A key with
        a live session gets `busy_text` (None is returned) unless `replace`."""
        self.register(spec)
        key = self.engine.key(self.kind(per), event)
        try:
            session = await self.engine.start(spec, key, data=data, event=event,
                                              replace=replace)
        except SessionExists:
            live = self.engine.session(key)
            name = live.spec if live is not None else spec.name
            self._emit(Reply(key, self.busy_text.format(spec=name), event))
            session = None
        await self.drain()
        return session

    async def route(self, event: ChatEvent) -> bool:
        """Give `event` to the session its key names. False: no session took it (hand it to
        the framework's other handlers). Returns once the replies it caused are sent."""
        if not len(self.engine):
            return False
        try:
            consumed = await self.engine.dispatch(event)
        except EventError:
            logger.exception("convo_fsm cannot route %r: handed back", event)
            return False
        if self._senders:
            await self.drain()
        return consumed

    async def restore(self, specs: Iterable[Spec] = (),
                      policies: Mapping[str, Policy] | None = None) -> list[Session]:
        """After a restart: bring back the stored sessions of the specs started so far (and
        `specs`), and fire the timeouts that fell due meanwhile (see `Engine.restore`)."""
        for spec in specs:
            self.register(spec)
        live = await self.engine.restore(list(self._specs.values()), policies)
        if any(":sender:" in s.key for s in live):  # per-user sessions must route again
            self.kind("user")
        await self.drain()
        return live

    async def close(self) -> None:
        """Send what is queued, then close the engine (stored sessions stay stored)."""
        await self.drain()
        await self.engine.close()

    # -- replies -------------------------------------------------------------------------
    def _emit(self, reply: Reply) -> None:
        queue = self._queues.get(reply.to)
        if queue is None:
            queue = self._queues[reply.to] = deque()
            task = asyncio.get_running_loop().create_task(self._send_queued(reply.to, queue))
            self._senders[reply.to] = task
        queue.append(reply)

    async def _send_queued(self, key: str, queue: deque[Reply]) -> None:
        try:
            while queue:
                reply = queue[0]
                try:
                    await self.send_reply(reply, address(key))
                except Exception:
                    logger.exception("convo_fsm could not send %r to %r", reply.text, key)
                queue.popleft()
        finally:
            del self._queues[key]
            del self._senders[key]

    async def drain(self) -> None:
        """Wait until every queued reply is sent (or failed and was logged)."""
        while self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)
