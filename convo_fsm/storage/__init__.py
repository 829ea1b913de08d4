"""Stores: where an engine keeps its sessions so they survive a restart.

    store = open_store("sessions.db")          # or "sqlite:///path", "memory", "redis://..."
    engine = Engine(store=store, clock=WallClock())
    await engine.restore([spec, ...])          # sessions, and the timeouts due while down

The engine commits each step after its actions ran and before the event is
reported consumed, and deletes a session when it ends (not when the engine
closes: a closed engine's sessions come back with `restore`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from convo_fsm.storage.redis import RedisStore

__all__ = [
    "Conflict",
    "MemoryStore",
    "Policy",
    "RedisStore",
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
    """A store from a URL: `memory`, `sqlite:///PATH` (or a plain path), `redis://HOST:PORT/DB`
    (needs the `redis` extra)."""
    if not isinstance(url, str) or not url.strip():
        raise StoreError(f"a store URL must be a non-empty str, got {url!r}")
    if url == "memory":
        return MemoryStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from convo_fsm.storage.redis import RedisStore
        except ImportError as exc:
            raise StoreError(f"store {url!r} needs redis-py: pip install 'convo-fsm[redis]' "
                             f"({exc})") from exc
        return RedisStore.from_url(url)
    if url.startswith("sqlite://"):  # sqlite:///abs/path.db, sqlite://relative.db
        return SqliteStore(url.removeprefix("sqlite://"))
    if "://" in url:
        raise StoreError(f"unknown store URL {url!r}: use memory, a file path, sqlite:///PATH "
                         "or redis://HOST:PORT/DB")
    return SqliteStore(url)


def __getattr__(name: str) -> object:
    # redis-py is an optional dependency: the Redis store is imported on first use.
    if name == "RedisStore":
        from convo_fsm.storage import redis

        return getattr(redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
