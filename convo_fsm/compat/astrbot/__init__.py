"""AstrBot's plugin API on convo_fsm (mirrors AstrBot's import paths, so porting a plugin
is changing `astrbot.` to `convo_fsm.compat.astrbot.` in its imports), plus `PluginHost`,
which runs such plugins without AstrBot, and `spec_command`, which makes any convo_fsm
`Spec` a plugin command.
"""

import logging

from convo_fsm.compat.astrbot.host import PluginHost
from convo_fsm.compat.astrbot.runtime import Runtime, WaiterEnded, WaiterExists
from convo_fsm.compat.astrbot.specs import spec_command

__all__ = ["PluginHost", "Runtime", "WaiterEnded", "WaiterExists", "logger", "spec_command"]

__version__ = "4.29.3"  # the AstrBot version whose plugin API this mirrors
logger = logging.getLogger("astrbot")  # `from astrbot import logger`
