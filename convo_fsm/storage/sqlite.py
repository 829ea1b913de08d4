"""SqliteStore: sessions in one SQLite file (stdlib `sqlite3`, WAL journal).

Each write is one short transaction on the event loop's thread: with WAL and
`synchronous=NORMAL` a commit is an append to the log, durable against the
process being killed (not against the machine losing power; pass `durable=True`
for `synchronous=FULL`). Several processes may open the same file; SQLite
serialises the writers and compare-and-set on `rev` catches lost updates.

Replies are at-least-once: the engine commits a step after its actions ran (their
replies are already sent) and before the event is reported consumed. A crash
between the replies and the commit leaves the previous state in the file; the
event, delivered again, is handled again and its replies are sent again.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import sqlite3
from pathlib import Path

from convo_fsm.session import Session
from convo_fsm.storage.base import (
    Conflict,
    Stored,
    StoreError,
    decode_session,
    encode_session,
    next_due,
)

__all__ = ["SqliteStore"]

logger = logging.getLogger("convo_fsm.storage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    due REAL,
    rev INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_due ON sessions (due) WHERE due IS NOT NULL;
CREATE TABLE IF NOT EXISTS revision (id INTEGER PRIMARY KEY CHECK (id = 1), rev INTEGER NOT NULL);
INSERT OR IGNORE INTO revision (id, rev) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL,
                                  host TEXT NOT NULL);
"""


def _text(value: object) -> str:
    # Text columns are read as bytes (see __init__): a row that is not valid UTF-8 must not
    # stop a whole listing; its key is shown with replacement characters.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class SqliteStore:
    def __init__(self, path: str | os.PathLike[str], *, durable: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise StoreError(f"cannot open SQLite store {self.path!r}: "
                                 f"directory {str(parent)!r} does not exist")
        try:
            # Autocommit mode: every write below is its own explicit transaction.
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._db.text_factory = bytes
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite store {self.path!r}: {exc}") from exc
        self._lock: int | None = None

    def __repr__(self) -> str:
        return f"<SqliteStore {self.path!r}>"

    # -- one engine per file -------------------------------------------------------------------
    def claim(self) -> None:
        """Make this store the engine's own: a second engine on the same file, in this process
        or another, is refused with `StoreError` (two engines would fork the sessions).
        Readers such as `convo-fsm sessions` do not claim. Released by `release` (or when the
        process ends: the lock is the kernel's)."""
        if self.path == ":memory:" or self._lock is not None:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            row = self._db.execute("SELECT pid, host FROM owner WHERE id = 1").fetchone()
            who = "" if row is None else f" (pid {row[0]} on {_text(row[1])})"
            raise StoreError(f"SQLite store {self.path!r} is in use by another engine{who}: one "
                             "engine per file (for several workers use Redis)") from None
        self._lock = fd
        self._db.execute("INSERT OR REPLACE INTO owner (id, pid, host) VALUES (1, ?, ?)",
                         (os.getpid(), socket.gethostname()))

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor drops the flock
            self._lock = None

    @staticmethod
    def _row(body: bytes, fp: bytes, rev: int) -> Stored:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(f"stored session is not valid UTF-8: {exc}") from exc
        return Stored(decode_session(text), _text(fp), rev)

    def _rows(self, rows: list[tuple[bytes, bytes, bytes, int]]) -> list[Stored]:
        # A record that cannot be read is reported and skipped: one bad row must not
        # stop a restart (`convo-fsm sessions --stop KEY` removes it).
        out = []
        for key, body, fp, rev in rows:
            try:
                out.append(self._row(body, fp, rev))
            except StoreError as exc:
                logger.warning("SQLite store %r: skipping unreadable session %r: %s",
                               self.path, _text(key), exc)
        return out

    async def load(self, key: str) -> Stored | None:
        row = self._db.execute("SELECT body, fingerprint, rev FROM sessions WHERE key = ?",
                               (key,)).fetchone()
        return None if row is None else self._row(*row)

    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        body = encode_session(session)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT rev FROM sessions WHERE key = ?", (session.key,)).fetchone()
            found = None if row is None else int(row[0])
            if found != expect:
                raise Conflict(session.key, expect, found)
            # One counter for the file: a key deleted and re-created never reuses a revision.
            (rev,) = db.execute("UPDATE revision SET rev = rev + 1 WHERE id = 1 "
                                "RETURNING rev").fetchone()
            db.execute(
                "INSERT INTO sessions (key, spec, fingerprint, state, due, rev, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "spec = excluded.spec, fingerprint = excluded.fingerprint, "
                "state = excluded.state, due = excluded.due, rev = excluded.rev, "
                "body = excluded.body",
                (session.key, session.spec, fingerprint, session.state, next_due(session),
                 rev, body))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return int(rev)

    async def delete(self, key: str, expect: int | None = None) -> bool:
        db = self._db
        if expect is None:
            return db.execute("DELETE FROM sessions WHERE key = ?", (key,)).rowcount > 0
        if db.execute("DELETE FROM sessions WHERE key = ? AND rev = ?",
                      (key, expect)).rowcount > 0:
            return True
        row = db.execute("SELECT rev FROM sessions WHERE key = ?", (key,)).fetchone()
        raise Conflict(key, expect, None if row is None else int(row[0]))

    async def due(self, now: float) -> list[Stored]:
        rows = self._db.execute("SELECT key, body, fingerprint, rev FROM sessions "
                                "WHERE due IS NOT NULL AND due <= ? ORDER BY due, key", (now,))
        return self._rows(rows.fetchall())

    async def list(self) -> list[Stored]:
        rows = self._db.execute("SELECT key, body, fingerprint, rev FROM sessions ORDER BY key")
        return self._rows(rows.fetchall())

    async def close(self) -> None:
        self.release()
        self._db.close()
