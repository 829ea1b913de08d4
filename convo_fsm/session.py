"""A session: the small record one conversation holds between events.

It names its spec instead of holding it, keeps `data` (a dict that must stay
JSON-serialisable so a store can persist it), the deadline of the current
state's timeout and of its warning, a generation counter that outdates timers
armed before the last change, and a short history of states.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Session"]


@attrs.frozen(slots=True, weakref_slot=False)
class Session:
    key: str
    spec: str
    state: str
    data: dict[str, Any] = attrs.field(eq=False)
    deadline: float | None
    warn_at: float | None
    generation: int
    history: tuple[str, ...]
    started: float
    updated: float

    def seconds_left(self, now: float) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - now)
