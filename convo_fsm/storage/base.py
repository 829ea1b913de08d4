"""The store protocol: what an engine needs to keep sessions across restarts.

A store holds one record per live session key: the `Session` (its `data` is
JSON by contract), the name and fingerprint of its spec, and a revision `rev`
the store bumps on every write. Writes are compare-and-set on `rev`: a writer
says which revision it last saw (`None`: the key must be free), and a store that
holds something else raises `Conflict` instead of overwriting it.

Deadlines are stored as the engine's clock gives them, so a store that must
outlive the process needs a clock that outlives it too (`WallClock`).
"""

from __future__ import annotations

import hashlib
import json
import math
import weakref
from typing import Any, Protocol, runtime_checkable

import attrs

from convo_fsm.session import Session
from convo_fsm.spec import On, Spec, Target
from convo_fsm.step import Policy

__all__ = [
    "Conflict",
    "Policy",
    "Store",
    "StoreError",
    "Stored",
    "decode_session",
    "encode_session",
    "fingerprint",
    "next_due",
]


class StoreError(RuntimeError):
    """A store cannot do what was asked (bad URL, unreadable record, server gone)."""


class Conflict(StoreError):
    """Compare-and-set failed: the stored revision of `key` is not the one the writer saw."""

    def __init__(self, key: str, expected: int | None, found: int | None) -> None:
        super().__init__(f"session {key!r} changed in the store: expected revision {expected}, "
                         f"found {found} (someone else wrote it)")
        self.key = key
        self.expected = expected
        self.found = found


@attrs.frozen
class Stored:
    """One stored record: the session, its spec's fingerprint and the store's revision."""

    session: Session
    fingerprint: str
    rev: int


@runtime_checkable
class Store(Protocol):
    """Where an engine commits sessions. Every method is a coroutine; each call is atomic."""

    async def load(self, key: str) -> Stored | None:
        """The record on `key`, or None."""
        ...

    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        """Write `session` if the stored revision is `expect` (None: no record); return the new
        revision. Raises `Conflict` otherwise."""
        ...

    async def delete(self, key: str, expect: int | None = None) -> bool:
        """Remove `key` (if `expect` is given, only at that revision, else `Conflict`).
        False if there was nothing to remove."""
        ...

    async def due(self, now: float) -> list[Stored]:
        """Records whose deadline or warning time is <= `now`, earliest first."""
        ...

    async def list(self) -> list[Stored]:
        """Every record, ordered by key."""
        ...

    async def close(self) -> None:
        """Release connections. The store keeps its records."""
        ...


# -- fingerprints ----------------------------------------------------------------------------
_FINGERPRINTS: weakref.WeakKeyDictionary[Spec, str] = weakref.WeakKeyDictionary()


def _target(target: Target) -> str:
    return target if isinstance(target, str) else repr(target)


def _on(t: On) -> list[Any]:
    return [t.event, _target(t.target), t.guard is not None, t.reset_timeout]


def fingerprint(spec: Spec) -> str:
    """A short hash of the spec's shape: states, transitions, targets and timeouts.

    Two versions of a spec with the same fingerprint have the same table; a stored
    session whose fingerprint differs was saved by another version (its state may be gone).
    Actions and guards are code and are not part of it.
    """
    known = _FINGERPRINTS.get(spec)
    if known is not None:
        return known
    shape = {
        "name": spec.name,
        "initial": spec.initial,
        "any": [_on(t) for t in spec.any_state],
        "states": [
            [s.name, s.final, [_on(t) for t in s.on],
             None if s.timeout is None else
             [s.timeout.after, _target(s.timeout.target), s.timeout.warn_before]]
            for s in spec.states
        ],
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
    _FINGERPRINTS[spec] = digest
    return digest


# -- encoding --------------------------------------------------------------------------------
def encode_session(session: Session) -> str:
    """The session as one JSON text (the stores keep this; the columns beside it are indexes)."""
    return json.dumps({
        "key": session.key, "spec": session.spec, "state": session.state,
        "data": session.data, "deadline": session.deadline, "warn_at": session.warn_at,
        "generation": session.generation, "history": list(session.history),
        "started": session.started, "updated": session.updated, "id": session.id,
    }, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _number(value: object, field: str, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StoreError(f"stored session field {field!r} must be a finite number, got {value!r}")
    return float(value)


def decode_session(text: str | bytes) -> Session:
    """The inverse of `encode_session`. A malformed record raises `StoreError` naming it."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"stored session is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise StoreError(f"stored session must be a JSON object, got {type(raw).__name__}")
    for field in ("key", "spec", "state"):
        if not isinstance(raw.get(field), str) or not raw[field]:
            raise StoreError(f"stored session field {field!r} must be a non-empty str, "
                             f"got {raw.get(field)!r}")
    data, history, generation = raw.get("data"), raw.get("history"), raw.get("generation")
    if not isinstance(data, dict):
        raise StoreError(f"stored session {raw['key']!r}: data must be an object, got {data!r}")
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise StoreError(f"stored session {raw['key']!r}: history must be a list of state names")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise StoreError(f"stored session {raw['key']!r}: generation must be an int >= 0")
    sid = raw.get("id", 0)  # records written before sessions had ids: 0
    if isinstance(sid, bool) or not isinstance(sid, int):
        raise StoreError(f"stored session {raw['key']!r}: id must be an int, got {sid!r}")
    started = _number(raw.get("started"), "started", False)
    updated = _number(raw.get("updated"), "updated", False)
    assert started is not None and updated is not None
    return Session(raw["key"], raw["spec"], raw["state"], data,
                   _number(raw.get("deadline"), "deadline", True),
                   _number(raw.get("warn_at"), "warn_at", True),
                   generation, tuple(history), started, updated, sid)


def next_due(session: Session) -> float | None:
    """The earliest of the session's deadline and warning time (what `Store.due` orders by)."""
    times = [t for t in (session.warn_at, session.deadline) if t is not None]
    return min(times) if times else None
