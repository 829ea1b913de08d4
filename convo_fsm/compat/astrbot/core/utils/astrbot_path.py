"""`astrbot.core.utils.astrbot_path` on convo_fsm: AstrBot's data folders. Under a
`PluginHost` they are the host's `data_dir` (a temporary folder unless given); elsewhere
`$ASTRBOT_ROOT/data` (default: `./data`), as in AstrBot."""

from __future__ import annotations

import os

from convo_fsm.compat.astrbot.context import current_host

__all__ = ["get_astrbot_data_path", "get_astrbot_plugin_data_path", "get_astrbot_root",
           "get_astrbot_temp_path"]


def get_astrbot_root() -> str:
    host = current_host()
    if host is not None:
        return str(host.root_dir)
    return os.path.realpath(os.environ.get("ASTRBOT_ROOT", os.getcwd()))


def get_astrbot_data_path() -> str:
    return os.path.join(get_astrbot_root(), "data")


def get_astrbot_temp_path() -> str:
    return os.path.join(get_astrbot_data_path(), "temp")


def get_astrbot_plugin_data_path() -> str:
    return os.path.join(get_astrbot_data_path(), "plugin_data")

