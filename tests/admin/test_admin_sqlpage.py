"""The SQLite store's sessions pages by SQL (admin.sqlpage) against the plain reference
(`query` over every stored record), and the store admin serving them without a listing."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from admin_kit import QUIZ
from hypothesis import given, settings
from hypothesis import strategies as st

from convo_fsm.admin import StoreSource, query, store_app
from convo_fsm.admin.source import state_counts
from convo_fsm.admin.sqlpage import SqlitePages
from convo_fsm.session import Session
from convo_fsm.storage import SqliteStore, Stored

# Keys whose case folding is not ASCII's (ß -> ss, the Kelvin sign -> k, É -> é).
keys = st.text(alphabet="abAB:<>é0ßKÉ", min_size=1, max_size=6)
times = st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0]), st.floats(0, 100))


def _session(key: str, spec: str, state: str, deadline: float | None,
             warn: float | None) -> Session:
    return Session(key, spec, state, {"deadline": 0, "note": key}, deadline, warn, 0,
                   (state,), 0.0, 0.0)


sessions = st.lists(
    st.builds(_session, keys, st.sampled_from(["quiz", "game"]), st.sampled_from(["a", "b", "c"]),
              times, times),  # warnings before, after, or without a deadline
    max_size=40, unique_by=lambda s: s.key)


def _fill(path: Path, rows: Iterable[Session]) -> None:
    async def go() -> None:
        store = SqliteStore(path)
        for s in rows:
            await store.save(s, "fp", None)
        await store.close()

    asyncio.run(go())


def _seen(rows: Iterable[Session]) -> list[tuple[str, str, str, float | None]]:
    return [(s.key, s.spec, s.state, s.deadline) for s in rows]


@settings(max_examples=100, deadline=None)
@given(sessions, st.sampled_from(["", "", "", "a", "A:", "é", "É", "ss", "k", "<"]),
       st.sampled_from(["", "", "quiz"]), st.sampled_from(["", "", "b"]),
       st.one_of(st.integers(0, 4), st.integers(0, 45)), st.integers(1, 12))
def test_an_sql_page_is_the_reference_page(rows: list[Session], text: str, spec: str,
                                           state: str, offset: int, limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.db"
        _fill(path, rows)
        pages = SqlitePages(str(path))
        expected = query(rows, text=text, spec=spec, state=state, offset=offset, limit=limit)
        for plan in ("ranged", "scan", "from-the-end", ""):
            total, page = pages.page(text=text, spec=spec, state=state, offset=offset,
                                     limit=limit, plan=plan)
            assert total == expected.total, plan
            assert _seen(page) == _seen(expected.rows), plan
        assert pages.counts() == state_counts(rows)
        pages.close()


def test_a_key_that_is_not_utf8_is_listed_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _fill(path, [_session("local:user:ok", "quiz", "a", 5.0, None)])
    db = sqlite3.connect(path)
    body = '{"key":"x","spec":"quiz","state":"a","data":{},"deadline":1.0,"warn_at":null,' \
           '"generation":0,"history":[],"started":0,"updated":0,"id":7}'
    db.execute("INSERT INTO sessions VALUES (CAST(? AS TEXT), 'quiz', 'fp', 'a', 1.0, 99, ?)",
               (b"bad\xff", body))
    db.commit()
    db.close()
    total, rows = SqlitePages(str(path)).page(text="BAD")
    assert total == 1 and rows[0].key == "bad\ufffd" and rows[0].deadline == 1.0


class _NoListing(SqliteStore):
    """An SQLite store whose full listing is refused: the admin must not need it."""

    async def list(self) -> list[Stored]:
        raise AssertionError("the admin read every record")


async def test_the_sqlite_store_admin_pages_without_reading_every_record(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    for i, key in enumerate(["local:user:<script>alert(1)</script>", "local:user:b",
                             "local:user:c"]):
        await store.save(_session(key, QUIZ.name, "reminded" if i else "asking",
                                  10.0 + i, None), "fp", None)
    await store.save(_session("local:user:z", QUIZ.name, "asking", None, None), "fp", None)
    await store.close()
    admin = store_app(_NoListing(path), [QUIZ], token="store-admin-token")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                 base_url="http://t") as c:
        listing = (await c.get("/sessions")).text
        assert "4</span> sessions" in listing
        assert "<script>alert(1)</script>" not in listing
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
        order = [listing.index(f"local:user:{k}") for k in ("&lt;script", "b", "c", "z")]
        assert order == sorted(order)  # by time left, no deadline last
        found = (await c.get("/sessions", params={"q": "USER:B", "state": "reminded"})).text
        assert "1</span> sessions" in found and "local:user:c" not in found
        assert (await c.get("/sessions", params={"page": "99"})).status_code == 200
        assert (await c.get("/sessions", params={"page": "9" * 40})).status_code == 200
        metrics = (await c.get("/metrics")).text
        assert 'convo_fsm_live_sessions{spec="quiz",state="reminded"} 2.0' in metrics
        assert (await c.get("/")).status_code == 200


async def test_a_record_sql_cannot_read_falls_back_to_the_listing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.save(_session("local:user:ok", QUIZ.name, "asking", 5.0, None), "fp", None)
    store._db.execute("INSERT INTO sessions VALUES ('local:user:broken', 'quiz', 'fp', "
                      "'asking', 1.0, 99, 'not json')")
    source = StoreSource(store, [QUIZ])
    page = await source.page()
    assert [s.key for s in page.rows] == ["local:user:ok"] and page.total == 1
    assert "cutting it from the listing" in caplog.text
    await store.close()
