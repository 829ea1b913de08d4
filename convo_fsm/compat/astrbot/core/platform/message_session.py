"""`astrbot.core.platform.message_session` on convo_fsm: `MessageSession` (also spelled
`MessageSesion`, as AstrBot does), a chat's identity; `str()` is its unified_msg_origin."""

from __future__ import annotations

from convo_fsm.compat.astrbot.core.platform.message_type import MessageType

__all__ = ["MessageSesion", "MessageSession"]


class MessageSession:
    def __init__(self, platform_name: str, message_type: MessageType, session_id: str) -> None:
        self.platform_name = platform_name
        self.platform_id = platform_name
        self.message_type = message_type
        self.session_id = session_id

    def __str__(self) -> str:
        return f"{self.platform_id}:{self.message_type.value}:{self.session_id}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MessageSession) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"MessageSession({str(self)!r})"

    @staticmethod
    def from_str(session_str: str) -> MessageSession:
        platform_id, message_type, session_id = session_str.split(":", 2)
        return MessageSession(platform_id, MessageType(message_type), session_id)


MessageSesion = MessageSession
