"""The sessions list of an SQLite store file, filtered, sorted and paginated by SQL.

`convo-fsm serve --store FILE` reads its pages through this: one page of the list is one
read transaction of a few statements on a read-only connection of our own (the engine's
writes are not held up; WAL readers see one snapshot), so the first page after a start is
as fast as any other and no page decodes every record.

It reads the store's table as `convo_fsm.storage.sqlite` writes it: the `key`, `spec` and
`state` columns, the `due` column (`next_due`: the earliest of the deadline and warning
time, indexed by `sessions_due`) and the deadline inside the JSON `body`. The order and the
filters are `source.query`'s (by deadline, no deadline last, then by key; key search
case-insensitive by `str.casefold`), and tests/admin/test_admin_sqlpage.py checks the two
against each other. Sorting by the deadline without an index of its own (one would cost
every engine write a JSON parse):

1. the `offset + limit` matching rows of smallest `due` (the index, in order) give a bound
   `B`: the largest of their deadlines. At least `offset + limit` rows have a deadline
   <= B, so every row of the page has one too, and since `due` <= deadline, its `due`
   is <= B as well;
2. the page is `ORDER BY deadline, key LIMIT/OFFSET` over the rows with `due <= B` (an index
   range; only those bodies are parsed). Without deadlines near the top the range is the
   page itself; warnings long before deadlines widen it, up to a scan of the table in C;
3. past the last deadline, the rows without one, by key (the primary key's order).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections import Counter
from typing import Any

from convo_fsm.session import Session

__all__ = ["SqlitePages"]

_D = "json_extract(body, '$.deadline')"
# Rows the `due` index walk may visit before one scan of the table is the cheaper way.
WALK = 20_000


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _contains(key: bytes, needle: str) -> bool:
    return needle in key.decode("utf-8", "replace").casefold()


def _lite(key: str, spec: str, state: str, deadline: float | None) -> Session:
    """A listing row: what the sessions page shows (data and history are on its own page)."""
    return Session(key, spec, state, {}, None if deadline is None else float(deadline), None,
                   0, (), 0.0, 0.0)


class SqlitePages:
    """Pages and per-state counts of the sessions in the SQLite file at `path`. Each call is
    blocking (run it in a thread); calls from several threads take turns."""

    def __init__(self, path: str) -> None:
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA cache_size = -65536")  # 64 MiB: a deep page sorts in memory
        self._db.execute("PRAGMA temp_store = MEMORY")
        self._db.text_factory = bytes  # a key that is not UTF-8 is shown, not an error
        self._db.create_function("admin_contains", 2, _contains, deterministic=True)
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise `sqlite3.Error` unless the file has the columns read here and SQLite has
        JSON (an older schema, another file)."""
        with self._lock:
            self._db.execute("SELECT key, spec, state, due, json_extract('{}', '$.a') "
                             "FROM sessions LIMIT 0").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _read(self, statements: Any) -> Any:
        with self._lock:
            self._db.execute("BEGIN")  # one snapshot for all the statements of a call
            try:
                return statements(self._db)
            finally:
                self._db.execute("COMMIT")

    def counts(self) -> Counter[tuple[str, str]]:
        """(spec, state) -> sessions."""
        def run(db: sqlite3.Connection) -> Counter[tuple[str, str]]:
            rows = db.execute("SELECT spec, state, count(*) FROM sessions GROUP BY spec, state")
            return Counter({(_text(sp), _text(st)): n for sp, st, n in rows})
        result: Counter[tuple[str, str]] = self._read(run)
        return result

    def page(self, *, text: str = "", spec: str = "", state: str = "", offset: int = 0,
             limit: int = 50, plan: str = "") -> tuple[int, list[Session]]:
        """(matches, the `limit` of them from `offset`), as `source.query` orders them.
        `plan` ("ranged", "scan" or "from-the-end"; default: chosen by the sizes) is for
        tests: each gives the same page."""
        where: list[str] = ["1"]
        params: list[Any] = []
        if spec:
            where.append("spec = ?")
            params.append(spec)
        if state:
            where.append("state = ?")
            params.append(state)
        if text:
            where.append("admin_contains(CAST(key AS BLOB), ?)")
            params.append(text.casefold())
        w = " AND ".join(where)
        top = offset + limit

        def ranked(db: sqlite3.Connection, bound: float | None) -> list[Any]:
            """The page among the rows with a deadline (and `due` <= `bound`)."""
            return db.execute(
                f"SELECT key, spec, state, d FROM (SELECT key, spec, state, {_D} AS d "
                f"FROM sessions WHERE due IS NOT NULL {'' if bound is None else 'AND due <= ?'} "
                f"AND {w}) WHERE d IS NOT NULL ORDER BY d, key LIMIT ? OFFSET ?",
                [*([] if bound is None else [bound]), *params, limit, offset]).fetchall()

        def scan(db: sqlite3.Connection) -> tuple[int | None, list[Session]]:
            """One pass over the table (the count of matches with it; None if the page is
            empty), parsing the bodies of the rows that pass."""
            found = db.execute(
                f"SELECT key, spec, state, d, count(*) OVER () FROM (SELECT key, spec, state, "
                f"{_D} AS d FROM sessions WHERE {w}) ORDER BY d IS NULL, d, key "
                "LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
            return (found[0][4] if found else None), [
                _lite(_text(k), _text(sp), _text(st), d) for k, sp, st, d, _ in found]

        def run(db: sqlite3.Connection) -> tuple[int, list[Session]]:
            if plan == "scan" or (text and not plan):  # a key search passes few rows
                counted, rows = scan(db)
                if counted is not None:
                    return counted, rows
            (total,) = db.execute(f"SELECT count(*) FROM sessions WHERE {w}", params).fetchone()
            if offset >= total:
                return int(total), []
            chosen = plan
            if not chosen:
                everyone = (db.execute("SELECT count(*) FROM sessions").fetchone()[0]
                            if len(where) > 1 else total)
                # Rows the `due` index walk visits to reach `top` matches (a table lookup
                # each when filtered) against one sequential scan parsing every match.
                walk = top * everyone / total
                chosen = "ranged" if (walk <= WALK if len(where) > 1
                                      else top <= everyone // 2) else "scan"
            if (chosen == "scan" and offset > total // 2) or chosen == "from-the-end":
                # Past the middle: the same page counted from the end (the sort keeps the
                # rows after it, fewer than the rows before it).
                after = total - offset
                found = db.execute(
                    f"SELECT key, spec, state, d FROM (SELECT key, spec, state, {_D} AS d "
                    f"FROM sessions WHERE {w}) ORDER BY d IS NULL DESC, d DESC, key DESC "
                    "LIMIT ? OFFSET ?",
                    [*params, min(limit, after), max(0, after - limit)]).fetchall()
                return int(total), [_lite(_text(k), _text(sp), _text(st), d)
                                    for k, sp, st, d in reversed(found)]
            if chosen == "scan":
                counted, rows = scan(db)
                return int(total if counted is None else counted), rows
            # The `top`-th smallest `due` (from the index alone when unfiltered) is the
            # first guess of a bound; it holds if the page's last deadline is under it.
            row = db.execute(f"SELECT due FROM sessions WHERE due IS NOT NULL AND {w} "
                             "ORDER BY due LIMIT 1 OFFSET ?", [*params, top - 1]).fetchone()
            found = ranked(db, None if row is None else row[0])
            if row is not None and not (len(found) == limit and found[-1][3] <= row[0]):
                # Warnings put deadlines past the guess: `top` rows have a deadline <= the
                # page's last one (a bound), or, if the page fell short, there is none.
                found = ranked(db, found[-1][3] if len(found) == limit else None)
            rows = [_lite(_text(k), _text(sp), _text(st), d) for k, sp, st, d in found]
            if len(rows) < limit:  # the page reaches the sessions without a deadline
                (with_deadline,) = db.execute(
                    f"SELECT count(*) FROM sessions WHERE due IS NOT NULL AND {w} "
                    f"AND {_D} IS NOT NULL", params).fetchone()
                rest = db.execute(
                    f"SELECT key, spec, state FROM sessions WHERE (due IS NULL OR {_D} IS NULL) "
                    f"AND {w} ORDER BY key LIMIT ? OFFSET ?",
                    [*params, limit - len(rows), max(0, offset - with_deadline)]).fetchall()
                rows += [_lite(_text(k), _text(sp), _text(st), None) for k, sp, st in rest]
            return int(total), rows

        result: tuple[int, list[Session]] = self._read(run)
        return result

