"""`astrbot.core.platform.astrbot_message` on convo_fsm: the platform-neutral message an
event carries (`event.message_obj`)."""

from __future__ import annotations

from typing import Any

from convo_fsm.compat.astrbot.core.message.components import BaseMessageComponent
from convo_fsm.compat.astrbot.core.platform.message_type import MessageType

__all__ = ["AstrBotMessage", "Group", "MessageMember"]


class MessageMember:
    def __init__(self, user_id: str, nickname: str | None = None) -> None:
        self.user_id = user_id
        self.nickname = nickname

    def __repr__(self) -> str:
        return f"MessageMember(user_id={self.user_id!r}, nickname={self.nickname!r})"


class Group:
    def __init__(self, group_id: str, group_name: str | None = None,
                 group_avatar: str | None = None, group_owner: str | None = None,
                 group_admins: list[str] | None = None,
                 members: list[MessageMember] | None = None) -> None:
        self.group_id = group_id
        self.group_name = group_name
        self.group_avatar = group_avatar
        self.group_owner = group_owner
        self.group_admins = group_admins
        self.members = members


class AstrBotMessage:
    """`type`, `self_id`, `session_id`, `message_id`, `group` (with `group_id`), `sender`
    (`user_id`, `nickname`), `message` (the components), `message_str`, `raw_message`,
    `timestamp`."""

    def __init__(self) -> None:
        self.type: MessageType = MessageType.FRIEND_MESSAGE
        self.self_id = ""
        self.session_id = ""
        self.message_id = ""
        self.group: Group | None = None
        self.sender: MessageMember = MessageMember("")
        self.message: list[BaseMessageComponent] = []
        self.message_str = ""
        self.raw_message: Any = None
        self.timestamp = 0

    @property
    def group_id(self) -> str:
        return self.group.group_id if self.group else ""

    @group_id.setter
    def group_id(self, value: str | None) -> None:
        if value:
            if self.group:
                self.group.group_id = value
            else:
                self.group = Group(group_id=value)
        else:
            self.group = None
