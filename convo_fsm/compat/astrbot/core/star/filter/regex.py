"""`astrbot.core.star.filter.regex` on convo_fsm (not bound by the wake prefix)."""

from __future__ import annotations

import re
from typing import Any

from convo_fsm.compat.astrbot.core.star.filter import HandlerFilter

__all__ = ["RegexFilter"]


class RegexFilter(HandlerFilter):
    def __init__(self, regex: str | re.Pattern[str]) -> None:
        self.regex = re.compile(regex)
        self.regex_str = self.regex.pattern

    def filter(self, event: Any, cfg: Any) -> bool:
        return bool(self.regex.search(event.get_message_str().strip()))
