"""AstrBot 4.29.3's plugin API on convo_fsm, at AstrBot's import paths under
`convo_fsm.compat.` (`convo_fsm.compat.astrbot.api.event`, `...core.utils.session_waiter`,
...; what is not offered and why: `surface.NOT_OFFERED`), plus `PluginHost`, a test kit
that runs AstrBot plugins without AstrBot (`load_folder` takes a plugin folder unmodified:
its `astrbot.*` imports map here while the host is open), and `spec_command`, which makes
any convo_fsm `Spec` a plugin command. Inside real AstrBot, use
`convo_fsm.adapters.astrbot` instead.
"""

import logging

from convo_fsm.compat.astrbot.host import PluginHost
from convo_fsm.compat.astrbot.runtime import Runtime, WaiterEnded, WaiterExists
from convo_fsm.compat.astrbot.specs import spec_command

__all__ = ["PluginHost", "Runtime", "WaiterEnded", "WaiterExists", "logger", "spec_command"]

__version__ = "4.29.3"  # the AstrBot version whose plugin API this mirrors
logger = logging.getLogger("astrbot")  # `from astrbot import logger`
