"""`astrbot.core.config` on convo_fsm."""

from convo_fsm.compat.astrbot.core.config.astrbot_config import AstrBotConfig

__all__ = ["AstrBotConfig"]
