"""`astrbot.api` on convo_fsm: the plugin-facing `logger`."""

import logging

__all__ = ["logger"]

logger = logging.getLogger("astrbot")
"""The plugin logger (AstrBot's routes per plugin; here one logger named "astrbot")."""
