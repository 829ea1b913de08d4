"""`astrbot.core.platform` on convo_fsm."""

from convo_fsm.compat.astrbot.core.platform.astr_message_event import AstrMessageEvent
from convo_fsm.compat.astrbot.core.platform.astrbot_message import (
    AstrBotMessage,
    Group,
    MessageMember,
)
from convo_fsm.compat.astrbot.core.platform.message_type import MessageType
from convo_fsm.compat.astrbot.core.platform.platform_metadata import PlatformMetadata

__all__ = ["AstrBotMessage", "AstrMessageEvent", "Group", "MessageMember", "MessageType",
           "PlatformMetadata"]
