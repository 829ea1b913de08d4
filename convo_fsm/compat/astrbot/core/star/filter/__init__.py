"""`astrbot.core.star.filter` on convo_fsm: the filters that decide which handlers an event
activates (`filter(event, cfg) -> bool`), as in AstrBot 4.29.3."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["HandlerFilter"]


class HandlerFilter(abc.ABC):
    @abc.abstractmethod
    def filter(self, event: Any, cfg: Any) -> bool:
        """Whether the handler is activated by `event`."""
