"""MemoryStore: the store protocol in a dict (tests, and the default when none is given).

Records are kept encoded, as a real store would keep them, so a session read back
is a copy: a test that mutates a live session's data cannot change what is stored.
"""

from __future__ import annotations

from convo_fsm.session import Session
from convo_fsm.storage.base import Conflict, Stored, decode_session, encode_session, next_due

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        # key -> (encoded session, fingerprint, rev, next due time)
        self._rows: dict[str, tuple[str, str, int, float | None]] = {}
        self._revs = 0

    def _stored(self, key: str) -> Stored:
        text, fp, rev, _ = self._rows[key]
        return Stored(decode_session(text), fp, rev)

    async def load(self, key: str) -> Stored | None:
        return self._stored(key) if key in self._rows else None

    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        row = self._rows.get(session.key)
        found = None if row is None else row[2]
        if found != expect:
            raise Conflict(session.key, expect, found)
        self._revs += 1  # one counter for the store: a key deleted and re-created never reuses one
        self._rows[session.key] = (encode_session(session), fingerprint, self._revs,
                                   next_due(session))
        return self._revs

    async def delete(self, key: str, expect: int | None = None) -> bool:
        row = self._rows.get(key)
        if row is None:
            if expect is not None:
                raise Conflict(key, expect, None)
            return False
        if expect is not None and row[2] != expect:
            raise Conflict(key, expect, row[2])
        del self._rows[key]
        return True

    async def due(self, now: float) -> list[Stored]:
        keys = sorted((row[3], key) for key, row in self._rows.items()
                      if row[3] is not None and row[3] <= now)
        return [self._stored(key) for _, key in keys]

    async def list(self) -> list[Stored]:
        return [self._stored(key) for key in sorted(self._rows)]

    async def close(self) -> None:
        """Nothing to release: the records stay (a test may reopen an engine on them)."""

    def __len__(self) -> int:
        return len(self._rows)
