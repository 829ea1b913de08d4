"""`astrbot.core.platform.astr_message_event` on convo_fsm: `AstrMessageEvent`, one
incoming message, with AstrBot 4.29.3's members (`message_str`, `message_obj`,
`unified_msg_origin`, `get_sender_id()`, `get_group_id()`, `is_admin()`, extras, results,
`stop_event()`, `await send(chain)`...).

Built as AstrBot builds it, `AstrMessageEvent(message_str, message_obj, platform_meta,
session_id)`, or in tests the short way, `AstrMessageEvent(text, sender, group, platform)`.
`send` goes to the event's `outlet` (a host's); hosts build events, plugins read them and
answer through them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from convo_fsm.compat.astrbot.core.message import components as Comp
from convo_fsm.compat.astrbot.core.message.message_event_result import (
    MessageChain,
    MessageEventResult,
)
from convo_fsm.compat.astrbot.core.platform.astrbot_message import (
    AstrBotMessage,
    Group,
    MessageMember,
)
from convo_fsm.compat.astrbot.core.platform.message_session import MessageSession
from convo_fsm.compat.astrbot.core.platform.message_type import MessageType
from convo_fsm.compat.astrbot.core.platform.platform_metadata import PlatformMetadata

__all__ = ["AstrMessageEvent"]

Outlet = Callable[["AstrMessageEvent", MessageChain], Any]
PLATFORM_CLIENTS = {
    "bot": "a platform client, such as AiocqhttpMessageEvent.bot, the OneBot API",
    "client": "a platform client, such as a Telegram or Discord client",
}
_ids = itertools.count(1)


def _message(text: str, sender: str, group: str | None, sender_name: str,
             components: Iterable[Comp.BaseMessageComponent] | None,
             self_id: str) -> AstrBotMessage:
    for name, value in (("sender", sender),):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{name} must be a non-empty str, got {value!r}")
    if group is not None and (not isinstance(group, str) or not group):
        raise TypeError(f"group must be None or a non-empty str, got {group!r}")
    msg = AstrBotMessage()
    msg.type = MessageType.GROUP_MESSAGE if group else MessageType.FRIEND_MESSAGE
    msg.self_id = self_id
    msg.session_id = group or sender
    msg.message_id = str(next(_ids))
    msg.sender = MessageMember(user_id=sender, nickname=sender_name or sender)
    msg.message = list(components) if components is not None else [Comp.Plain(text)]
    msg.message_str = text
    if group:
        msg.group_id = group
    return msg


class AstrMessageEvent:
    """One incoming message (see the module docstring)."""

    def __init__(
        self,
        message_str: str,
        message_obj: AstrBotMessage | str = "alice",
        platform_meta: PlatformMetadata | str | None = None,
        session_id: str = "local",
        *,
        sender_name: str = "",
        components: Iterable[Comp.BaseMessageComponent] | None = None,
        outlet: Outlet | None = None,
        runtime: Any = None,
        self_id: str = "bot",
    ) -> None:
        if not isinstance(message_str, str):
            raise TypeError(f"message_str must be a str, got {type(message_str).__name__}")
        if isinstance(message_obj, str):  # the short form: (text, sender, group, platform)
            group = platform_meta if isinstance(platform_meta, str) or platform_meta is None \
                else None
            platform = session_id
            if not isinstance(platform, str) or not platform:
                raise TypeError(f"platform must be a non-empty str, got {platform!r}")
            message_obj = _message(message_str, message_obj, group, sender_name, components,
                                   self_id)
            platform_meta = PlatformMetadata(name=platform, description="convo_fsm", id=platform)
            session_id = message_obj.session_id
        if not isinstance(message_obj, AstrBotMessage) or not isinstance(
                platform_meta, PlatformMetadata):
            raise TypeError("AstrMessageEvent(message_str, message_obj: AstrBotMessage, "
                            "platform_meta: PlatformMetadata, session_id)")
        self.message_str = message_str
        self.message_obj = message_obj
        self.platform_meta = platform_meta
        self.session_id = session_id
        self.role = "member"
        self.is_wake = False
        self.is_at_or_wake_command = False
        self.call_llm = False
        self.plugins_name: list[str] | None = None
        self._extras: dict[str, Any] = {}
        self._result: MessageEventResult | None = None
        self._has_send_oper = False
        self._force_stopped = False
        self._outlet = outlet
        self._convo_fsm_runtime = runtime  # which engine `session_waiter` uses for this event
        self.sent: list[MessageChain] = []  # what `send` delivered (tests read it)

    # -- who and where ----------------------------------------------------------------------
    @property
    def unified_msg_origin(self) -> str:
        return f"{self.platform_meta.id}:{self.get_message_type().value}:{self.session_id}"

    @property
    def session(self) -> MessageSession:
        """The chat as a `MessageSession` (`str(event.session)` is unified_msg_origin)."""
        return MessageSession(str(self.platform_meta.id), self.get_message_type(),
                              self.session_id)

    def get_platform_name(self) -> str:
        return self.platform_meta.name

    def get_platform_id(self) -> str:
        return str(self.platform_meta.id)

    def get_message_str(self) -> str:
        return self.message_str

    def get_message_outline(self) -> str:
        return Comp.render_chain(self.message_obj.message)

    def get_messages(self) -> list[Comp.BaseMessageComponent]:
        return self.message_obj.message

    def get_message_type(self) -> MessageType:
        return self.message_obj.type

    def get_session_id(self) -> str:
        return self.session_id

    def get_group_id(self) -> str:
        return self.message_obj.group_id

    def get_self_id(self) -> str:
        return self.message_obj.self_id

    def get_sender_id(self) -> str:
        return str(self.message_obj.sender.user_id)

    def get_sender_name(self) -> str:
        return self.message_obj.sender.nickname or ""

    def is_private_chat(self) -> bool:
        return self.message_obj.type is MessageType.FRIEND_MESSAGE

    def is_wake_up(self) -> bool:
        return self.is_wake

    def is_admin(self) -> bool:
        return self.role == "admin"

    async def get_group(self, group_id: str | None = None, **kwargs: Any) -> Group | None:
        return self.message_obj.group

    # -- extras -----------------------------------------------------------------------------
    def set_extra(self, key: str, value: Any) -> None:
        self._extras[key] = value

    def get_extra(self, key: str | None = None, default: Any = None) -> Any:
        if key is None:
            return self._extras
        return self._extras.get(key, default)

    def clear_extra(self) -> None:
        self._extras.clear()

    # -- answering --------------------------------------------------------------------------
    def make_result(self) -> MessageEventResult:
        return MessageEventResult()

    def plain_result(self, text: str) -> MessageEventResult:
        return MessageEventResult().message(text)  # type: ignore[no-any-return]

    def image_result(self, url_or_path: str) -> MessageEventResult:
        if url_or_path.startswith("http"):
            return MessageEventResult().url_image(url_or_path)  # type: ignore[no-any-return]
        return MessageEventResult().file_image(url_or_path)  # type: ignore[no-any-return]

    def chain_result(self, chain: list[Comp.BaseMessageComponent]) -> MessageEventResult:
        result = MessageEventResult()
        result.chain = chain
        return result

    async def send(self, message: MessageChain) -> None:
        """Send `message` to this event's chat now."""
        if not isinstance(message, MessageChain):
            raise TypeError(f"send() needs a MessageChain, got {type(message).__name__}")
        self._has_send_oper = True
        self.sent.append(message)
        if self._outlet is not None:
            self._outlet(self, message)

    async def send_typing(self) -> None:
        """Nothing to show in a test chat."""

    async def stop_typing(self) -> None:
        """Nothing to show in a test chat."""

    async def react(self, emoji: str) -> None:
        await self.send(MessageChain().message(emoji))

    def set_result(self, result: MessageEventResult | str) -> None:
        if isinstance(result, str):
            result = MessageEventResult().message(result)
        self._result = result  # type: ignore[assignment]

    def get_result(self) -> MessageEventResult | None:
        return self._result

    def clear_result(self) -> None:
        self._result = None

    def request_llm(self, prompt: str, func_tool_manager: Any = None, tool_set: Any = None,
                    session_id: str = "", image_urls: list[str] | None = None,
                    audio_urls: list[str] | None = None, contexts: list[Any] | None = None,
                    system_prompt: str = "", conversation: Any = None) -> Any:
        """`yield event.request_llm(prompt=...)`: the host asks its scripted LLM and sends
        the answer (AstrBot's agent stage, without tools or conversation history)."""
        from convo_fsm.compat.astrbot.api.provider import ProviderRequest

        return ProviderRequest(prompt=prompt, session_id=session_id, image_urls=image_urls,
                               contexts=contexts, system_prompt=system_prompt,
                               audio_urls=list(audio_urls or ()), conversation=conversation)

    def should_call_llm(self, call_llm: bool) -> None:
        self.call_llm = call_llm

    # -- propagation ------------------------------------------------------------------------
    def stop_event(self) -> None:
        """No later handler sees this event."""
        self._force_stopped = True
        if self._result is None:
            self.set_result(MessageEventResult().stop_event())
        else:
            self._result.stop_event()

    def continue_event(self) -> None:
        self._force_stopped = False
        if self._result is None:
            self.set_result(MessageEventResult().continue_event())
        else:
            self._result.continue_event()

    def is_stopped(self) -> bool:
        if self._force_stopped:
            return True
        return self._result is not None and self._result.is_stopped()

    def __getattr__(self, name: str) -> Any:
        # Platform events' clients (aiocqhttp's `event.bot`, ...): a real chat network.
        if name in PLATFORM_CLIENTS:
            from convo_fsm.compat.astrbot.api.star import NotOffered

            raise NotOffered(f"AstrMessageEvent.{name} ({PLATFORM_CLIENTS[name]})")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return (f"<AstrMessageEvent {self.unified_msg_origin} from {self.get_sender_id()}: "
                f"{self.message_str!r}>")
