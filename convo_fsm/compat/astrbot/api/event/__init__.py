"""`astrbot.api.event` on convo_fsm: `filter`, `AstrMessageEvent`, `MessageChain`,
`MessageEventResult`.

`AstrMessageEvent` offers what plugins use: `message_str`, `get_sender_id()`,
`get_sender_name()`, `get_group_id()` ("" outside groups), `unified_msg_origin`
(`platform:GroupMessage|FriendMessage:session`), `get_messages()`, `plain_result()`,
`make_result()`, `chain_result()`, `await send(result)`, `stop_event()`.
Hosts build events; plugins only read them and answer through them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

from convo_fsm.compat.astrbot.api import message_components as Comp
from convo_fsm.compat.astrbot.api.event import filter

__all__ = [
    "AstrMessageEvent",
    "EventResultType",
    "MessageChain",
    "MessageEventResult",
    "MessageType",
    "filter",
]


class MessageType(enum.Enum):
    GROUP_MESSAGE = "GroupMessage"
    FRIEND_MESSAGE = "FriendMessage"


class MessageChain:
    """An ordered list of components; the builder methods return the chain itself."""

    def __init__(self, chain: Iterable[Comp.BaseMessageComponent] | None = None) -> None:
        self.chain: list[Comp.BaseMessageComponent] = list(chain or ())

    def message(self, message: str) -> MessageChain:
        self.chain.append(Comp.Plain(message))
        return self

    def at(self, name: str, qq: str | int) -> MessageChain:
        self.chain.append(Comp.At(qq=qq, name=name))
        return self

    def url_image(self, url: str) -> MessageChain:
        self.chain.append(Comp.Image.fromURL(url))
        return self

    def file_image(self, path: str) -> MessageChain:
        self.chain.append(Comp.Image.fromFileSystem(path))
        return self

    def get_plain_text(self) -> str:
        """The Plain texts, joined by spaces (AstrBot's rule)."""
        return " ".join(c.text for c in self.chain if isinstance(c, Comp.Plain))

    def render(self) -> str:
        """The chain as a text-only chat shows it."""
        return Comp.render_chain(self.chain)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.chain!r})"


class EventResultType(enum.Enum):
    CONTINUE = enum.auto()
    STOP = enum.auto()


class MessageEventResult(MessageChain):
    """A reply plus whether the event should stop propagating."""

    def __init__(self, chain: Iterable[Comp.BaseMessageComponent] | None = None) -> None:
        super().__init__(chain)
        self.result_type = EventResultType.CONTINUE

    def stop_event(self) -> MessageEventResult:
        self.result_type = EventResultType.STOP
        return self

    def continue_event(self) -> MessageEventResult:
        self.result_type = EventResultType.CONTINUE
        return self

    def is_stopped(self) -> bool:
        return self.result_type is EventResultType.STOP


Outlet = Callable[["AstrMessageEvent", MessageChain], Any]


class AstrMessageEvent:
    """One incoming message. `outlet(event, chain)` is where `send` delivers (the host's)."""

    def __init__(
        self,
        message_str: str,
        sender: str = "alice",
        group: str | None = None,
        platform: str = "local",
        *,
        sender_name: str = "",
        components: Iterable[Comp.BaseMessageComponent] | None = None,
        outlet: Outlet | None = None,
        runtime: Any = None,
    ) -> None:
        if not isinstance(message_str, str):
            raise TypeError(f"message_str must be a str, got {type(message_str).__name__}")
        for name, value in (("sender", sender), ("platform", platform)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty str, got {value!r}")
        if group is not None and (not isinstance(group, str) or not group):
            raise TypeError(f"group must be None or a non-empty str, got {group!r}")
        self.message_str = message_str
        self._sender = sender
        self._sender_name = sender_name
        self._group = group or ""
        self._platform = platform
        self._messages: list[Comp.BaseMessageComponent] = (
            list(components) if components is not None else [Comp.Plain(message_str)])
        self._outlet = outlet
        self._result: MessageEventResult | None = None
        self._stopped = False
        self._convo_fsm_runtime = runtime  # which engine `session_waiter` uses for this event
        self.sent: list[MessageChain] = []  # what `send` delivered (tests read it)

    # -- who and where ----------------------------------------------------------------------
    def get_sender_id(self) -> str:
        return self._sender

    def get_sender_name(self) -> str:
        return self._sender_name

    def get_group_id(self) -> str:
        return self._group

    def get_platform_name(self) -> str:
        return self._platform

    def get_platform_id(self) -> str:
        return self._platform

    def get_message_type(self) -> MessageType:
        return MessageType.GROUP_MESSAGE if self._group else MessageType.FRIEND_MESSAGE

    def is_private_chat(self) -> bool:
        return not self._group

    @property
    def session_id(self) -> str:
        return self._group or self._sender

    @property
    def unified_msg_origin(self) -> str:
        return f"{self._platform}:{self.get_message_type().value}:{self.session_id}"

    def get_message_str(self) -> str:
        return self.message_str

    def get_messages(self) -> list[Comp.BaseMessageComponent]:
        return self._messages

    # -- answering --------------------------------------------------------------------------
    def make_result(self) -> MessageEventResult:
        return MessageEventResult()

    def plain_result(self, text: str) -> MessageEventResult:
        return MessageEventResult().message(text)  # type: ignore[return-value]

    def chain_result(self, chain: list[Comp.BaseMessageComponent]) -> MessageEventResult:
        return MessageEventResult(chain)

    def image_result(self, url_or_path: str) -> MessageEventResult:
        result = MessageEventResult()
        if url_or_path.startswith("http"):
            result.url_image(url_or_path)
        else:
            result.file_image(url_or_path)
        return result

    async def send(self, message: MessageChain) -> None:
        """Send `message` to this event's chat now."""
        if not isinstance(message, MessageChain):
            raise TypeError(f"send() needs a MessageChain, got {type(message).__name__}")
        self.sent.append(message)
        if self._outlet is not None:
            self._outlet(self, message)

    def set_result(self, result: MessageEventResult | str) -> None:
        self._result = MessageEventResult().message(result) if isinstance(  # type: ignore[assignment]
            result, str) else result

    def get_result(self) -> MessageEventResult | None:
        return self._result

    def clear_result(self) -> None:
        self._result = None

    # -- propagation ------------------------------------------------------------------------
    def stop_event(self) -> None:
        """No later handler sees this event."""
        self._stopped = True

    def continue_event(self) -> None:
        self._stopped = False

    def is_stopped(self) -> bool:
        return self._stopped

    def __repr__(self) -> str:
        return (f"<AstrMessageEvent {self.unified_msg_origin} from {self._sender}: "
                f"{self.message_str!r}>")
