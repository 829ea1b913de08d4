"""`astrbot.api` on convo_fsm: `AstrBotConfig`, the plugin `logger`, `llm_tool`."""

import logging

from convo_fsm.compat.astrbot.api.event.filter import llm_tool
from convo_fsm.compat.astrbot.core.config.astrbot_config import AstrBotConfig

__all__ = ["AstrBotConfig", "llm_tool", "logger"]

logger = logging.getLogger("astrbot")
"""The plugin logger (AstrBot's routes per plugin; here one logger named "astrbot")."""
