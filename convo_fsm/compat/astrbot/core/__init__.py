"""`astrbot.core` on convo_fsm: `AstrBotConfig` and `logger` (what plugins import from it)."""

import logging

from convo_fsm.compat.astrbot.core.config.astrbot_config import AstrBotConfig

__all__ = ["AstrBotConfig", "logger"]

logger = logging.getLogger("astrbot")
