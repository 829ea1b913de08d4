"""`astrbot.core.star.filter.event_message_type` on convo_fsm."""

from __future__ import annotations

import enum
from typing import Any

from convo_fsm.compat.astrbot.core.platform.message_type import MessageType
from convo_fsm.compat.astrbot.core.star.filter import HandlerFilter

__all__ = ["EventMessageType", "EventMessageTypeFilter"]


class EventMessageType(enum.Flag):
    GROUP_MESSAGE = enum.auto()
    PRIVATE_MESSAGE = enum.auto()
    OTHER_MESSAGE = enum.auto()
    ALL = GROUP_MESSAGE | PRIVATE_MESSAGE | OTHER_MESSAGE


_OF_MESSAGE_TYPE = {
    MessageType.GROUP_MESSAGE: EventMessageType.GROUP_MESSAGE,
    MessageType.FRIEND_MESSAGE: EventMessageType.PRIVATE_MESSAGE,
    MessageType.OTHER_MESSAGE: EventMessageType.OTHER_MESSAGE,
}


class EventMessageTypeFilter(HandlerFilter):
    def __init__(self, event_message_type: EventMessageType) -> None:
        self.event_message_type = event_message_type

    def filter(self, event: Any, cfg: Any) -> bool:
        kind = _OF_MESSAGE_TYPE.get(event.get_message_type())
        return kind is not None and bool(kind & self.event_message_type)
