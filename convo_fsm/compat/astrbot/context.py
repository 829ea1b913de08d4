"""Which `PluginHost` the running code belongs to: set around a host's plugin
construction and in its handler tasks, so class-level AstrBot APIs (`StarTools`, the data
paths) answer for the right host when several exist (one per test)."""

from __future__ import annotations

import contextvars
import weakref
from typing import Any

__all__ = ["current_host", "host_var"]

host_var: contextvars.ContextVar[Any] = contextvars.ContextVar("convo_fsm_astrbot_host",
                                                               default=None)
_open: list[weakref.ref[Any]] = []  # hosts not closed yet, newest last (a host never
# closed is forgotten once garbage)


def current_host() -> Any:
    """The host of the running code, else the newest open host, else None."""
    host = host_var.get()
    if host is not None:
        return host
    while _open:
        newest = _open[-1]()
        if newest is not None:
            return newest
        _open.pop()
    return None


def opened(host: Any) -> None:
    _open.append(weakref.ref(host))


def closed(host: Any) -> None:
    _open[:] = [r for r in _open if r() is not None and r() is not host]
