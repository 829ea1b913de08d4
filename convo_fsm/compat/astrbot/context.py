"""Which `PluginHost` the running code belongs to: set around a host's plugin
construction and in its handler tasks, so class-level AstrBot APIs (`StarTools`, the data
paths) answer for the right host when several exist (one per test)."""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["current_host", "host_var"]

host_var: contextvars.ContextVar[Any] = contextvars.ContextVar("convo_fsm_astrbot_host",
                                                               default=None)
_open: list[Any] = []  # hosts not closed yet, newest last


def current_host() -> Any:
    """The host of the running code, else the newest open host, else None."""
    host = host_var.get()
    if host is None and _open:
        return _open[-1]
    return host


def opened(host: Any) -> None:
    _open.append(host)


def closed(host: Any) -> None:
    if host in _open:
        _open.remove(host)
