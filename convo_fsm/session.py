"""A session: the small record one conversation holds between events.

It names its spec instead of holding it, keeps `data` (a dict that must stay
JSON as it is, so a store gives it back unchanged: see `check_data`), the
deadline of the current state's timeout and of its warning, a generation counter
that outdates timers armed before the last change, a short history of states, and
an `id` unique per start: a session's identity (a new session on the same key has
another id, so nothing of the old one can touch it).

It is an immutable named tuple rather than an attrs class because the step
makes a new one per event: building an 11-field tuple costs a fifth of a frozen
attrs `__init__` (which sets each slot through `object.__setattr__`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = ["DataError", "Session", "check_data"]


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
    id: int = 0

    def seconds_left(self, now: float) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - now)


class DataError(TypeError):
    """Session data that a store would not give back as it is. `path` names the place,
    for example `data['answers'][2]`."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"session {path}: {problem}")
        self.path = path


def _text_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_data(data: object, path: str = "data") -> None:
    """Raise `DataError` unless `data` survives JSON unchanged: dicts with str keys, lists,
    str (valid Unicode: no lone surrogate, as half an emoji leaves), int, finite float,
    bool and None. A tuple, a set, an int key or a NaN would come back different (or not
    at all), so they are refused here, at commit, rather than lost at the next restart."""
    kind = type(data)
    if kind is dict:
        for k, v in data.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise DataError(f"{path}[{k!r}]", f"key {k!r} is a {type(k).__name__}; "
                                "JSON keys are str (it would come back as a str)")
            if not _text_ok(k):
                raise DataError(f"{path}[{k!r}]", "key is not valid Unicode (lone surrogate)")
            check_data(v, f"{path}[{k!r}]")
    elif kind is list:
        for i, v in enumerate(data):  # type: ignore[arg-type]
            check_data(v, f"{path}[{i}]")
    elif kind is str:
        if not _text_ok(data):  # type: ignore[arg-type]
            raise DataError(path, f"{data!r} is not valid Unicode (a lone surrogate, as "
                            "half an emoji leaves): it cannot be stored")
    elif kind is float:
        if not math.isfinite(data):  # type: ignore[arg-type]
            raise DataError(path, f"{data!r} is not a finite number (JSON has no NaN/inf)")
    elif data is None or kind is int or kind is bool:
        return
    elif kind is tuple:
        raise DataError(path, "a tuple would come back from the store as a list: use a list")
    elif isinstance(data, str | int | float):
        base = next(t for t in (str, int, float) if isinstance(data, t)).__name__
        raise DataError(path, f"a {kind.__name__} (a {base} subclass, such as an enum) would "
                        f"come back from the store as a plain {base}: store {base}(value)")
    else:
        raise DataError(path, f"a {kind.__name__} is not JSON (use dict, list, str, int, "
                        "float, bool or None)")
