"""`astrbot.api.all` on convo_fsm: the star-import module of old plugins (components,
events, results, `Star`, `Context`, `register`, the `filter` decorators by name, config and
paths). Names it does not offer: `convo_fsm.compat.astrbot.surface.NOT_OFFERED`."""

import logging

from convo_fsm.compat.astrbot.api.event.filter import (
    EventMessageType,
    EventMessageTypeFilter,
    PlatformAdapterType,
    PlatformAdapterTypeFilter,
    command,
    command_group,
    event_message_type,
    llm_tool,
    platform_adapter_type,
    regex,
)
from convo_fsm.compat.astrbot.api.provider import Provider
from convo_fsm.compat.astrbot.api.star import Context, Star, register
from convo_fsm.compat.astrbot.core.config.astrbot_config import AstrBotConfig
from convo_fsm.compat.astrbot.core.message.components import (
    RPS,
    At,
    AtAll,
    BaseMessageComponent,
    ComponentType,
    ComponentTypes,
    Contact,
    Dice,
    Face,
    File,
    Forward,
    Image,
    Json,
    Location,
    Music,
    Node,
    Nodes,
    Plain,
    Poke,
    Record,
    Reply,
    Shake,
    Share,
    Unknown,
    Video,
    file_uri_to_path,
    is_file_uri,
)
from convo_fsm.compat.astrbot.core.message.message_event_result import (
    CommandResult,
    EventResultType,
    MessageChain,
    MessageEventResult,
)
from convo_fsm.compat.astrbot.core.platform.astr_message_event import AstrMessageEvent
from convo_fsm.compat.astrbot.core.platform.astrbot_message import (
    AstrBotMessage,
    MessageMember,
)
from convo_fsm.compat.astrbot.core.platform.message_type import MessageType
from convo_fsm.compat.astrbot.core.platform.platform_metadata import PlatformMetadata
from convo_fsm.compat.astrbot.core.utils.astrbot_path import (
    get_astrbot_data_path,
    get_astrbot_temp_path,
)

__all__ = [
    "RPS", "AstrBotConfig", "AstrBotMessage", "AstrMessageEvent", "At", "AtAll",
    "BaseMessageComponent", "CommandResult", "ComponentType", "ComponentTypes", "Contact",
    "Context", "Dice", "EventMessageType", "EventMessageTypeFilter", "EventResultType",
    "Face", "File", "Forward", "Image", "Json", "Location", "MessageChain",
    "MessageEventResult", "MessageMember", "MessageType", "Music", "Node", "Nodes", "Plain",
    "PlatformAdapterType", "PlatformAdapterTypeFilter", "PlatformMetadata", "Poke",
    "Provider", "Record", "Reply", "Shake", "Share", "Star", "Unknown", "Video", "command",
    "command_group", "event_message_type", "file_uri_to_path", "get_astrbot_data_path",
    "get_astrbot_temp_path", "is_file_uri",
    "llm_tool", "logger", "platform_adapter_type", "regex", "register",
]

logger = logging.getLogger("astrbot")
