"""`astrbot.api.event` on convo_fsm: `filter`, `AstrMessageEvent`, `MessageChain`,
`MessageEventResult`, `CommandResult`, `EventResultType`, `ResultContentType`."""

from convo_fsm.compat.astrbot.api.event import filter
from convo_fsm.compat.astrbot.core.message.message_event_result import (
    CommandResult,
    EventResultType,
    MessageChain,
    MessageEventResult,
    ResultContentType,
)
from convo_fsm.compat.astrbot.core.platform.astr_message_event import AstrMessageEvent
from convo_fsm.compat.astrbot.core.platform.message_type import MessageType

__all__ = [
    "AstrMessageEvent",
    "CommandResult",
    "EventResultType",
    "MessageChain",
    "MessageEventResult",
    "MessageType",
    "ResultContentType",
    "filter",
]
