"""A session: the small record one conversation holds between events.

It names its spec instead of holding it, keeps `data` (a dict that must stay
JSON-serialisable so a store can persist it), the deadline of the current
state's timeout and of its warning, a generation counter that outdates timers
armed before the last change, and a short history of states.

It is an immutable named tuple rather than an attrs class because the step
makes a new one per event: building a 10-field tuple costs a fifth of a frozen
attrs `__init__` (which sets each slot through `object.__setattr__`), and an
idle session is 136 bytes plus its values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Session"]


class Session(NamedTuple):
    key: str
    spec: str
    state: str
    data: dict[str, Any]
    deadline: float | None
    warn_at: float | None
    generation: int
    history: tuple[str, ...]
    started: float
    updated: float

    def seconds_left(self, now: float) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - now)
