"""`astrbot.core.platform.message_type` on convo_fsm."""

import enum

__all__ = ["MessageType"]


class MessageType(enum.Enum):
    GROUP_MESSAGE = "GroupMessage"
    FRIEND_MESSAGE = "FriendMessage"
    OTHER_MESSAGE = "OtherMessage"
