"""Stores: where an engine keeps its sessions so they survive a restart.

    store = open_store("sessions.db")          # or "sqlite:///path", "memory"
    engine = Engine(store=store, clock=WallClock())
    await engine.restore([spec, ...])          # sessions, and the timeouts due while down

The engine commits each step after its actions ran and before the event is
reported consumed, and deletes a session when it ends (not when the engine
closes: a closed engine's sessions come back with `restore`).
"""

from __future__ import annotations

from convo_fsm.storage.base import (
    Conflict,
    Policy,
    Store,
    Stored,
    StoreError,
    decode_session,
    encode_session,
    fingerprint,
)
from convo_fsm.storage.clock import WallClock
from convo_fsm.storage.memory import MemoryStore
from convo_fsm.storage.sqlite import SqliteStore

__all__ = [
    "Conflict",
    "MemoryStore",
    "Policy",
    "SqliteStore",
    "Store",
    "StoreError",
    "Stored",
    "WallClock",
    "decode_session",
    "encode_session",
    "fingerprint",
    "open_store",
]


def open_store(url: str) -> Store:
    """A store from a URL: `memory`, `sqlite:///PATH` (or a plain path)."""
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"a store URL must be a non-empty str, got {url!r}")
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite://"):  # sqlite:///abs/path.db, sqlite://relative.db
        return SqliteStore(url.removeprefix("sqlite://"))
    if "://" in url:
        raise StoreError(f"unknown store URL {url!r}: use memory, a file path or sqlite:///PATH")
    return SqliteStore(url)

