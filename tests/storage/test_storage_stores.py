"""The store contract, for every store: compare-and-set, delete, due, list, encoding."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convo_fsm import Session
from convo_fsm.storage import (
    Conflict,
    MemoryStore,
    SqliteStore,
    Store,
    StoreError,
    decode_session,
    encode_session,
    open_store,
)


def make(key: str = "k", state: str = "a", deadline: float | None = None,
         warn_at: float | None = None, data: dict[str, Any] | None = None,
         generation: int = 0) -> Session:
    return Session(key, "spec", state, {"n": 1} if data is None else data, deadline, warn_at,
                   generation, (state,), 1.0, 2.0)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store
    if request.param == "redis":
        from convo_fsm.storage import RedisStore

        s = RedisStore.from_url(request.getfixturevalue("redis_url"),
                                prefix=request.getfixturevalue("redis_prefix"))
    else:
        s = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    yield s
    await s.close()


async def test_save_is_compare_and_set(store: Store) -> None:
    rev = await store.save(make(), "fp", None)
    with pytest.raises(Conflict) as info:
        await store.save(make(), "fp", None)  # the key is taken
    assert info.value.found == rev and info.value.expected is None
    rev2 = await store.save(make(state="b", generation=1), "fp", rev)
    assert rev2 != rev
    with pytest.raises(Conflict):
        await store.save(make(state="c"), "fp", rev)  # a stale writer
    got = await store.load("k")
    assert got is not None and got.rev == rev2 and got.session.state == "b"
    assert got.session == make(state="b", generation=1) and got.session.data == {"n": 1}
    assert got.fingerprint == "fp"


async def test_delete(store: Store) -> None:
    assert await store.delete("nobody") is False
    rev = await store.save(make(), "fp", None)
    with pytest.raises(Conflict):
        await store.delete("k", rev + 1000)
    assert await store.load("k") is not None
    assert await store.delete("k", rev) is True
    assert await store.load("k") is None
    with pytest.raises(Conflict):
        await store.delete("k", rev)
    # A key re-created after a delete never gets an old revision back.
    assert await store.save(make(), "fp", None) != rev


async def test_due_and_list(store: Store) -> None:
    await store.save(make("late", deadline=50.0), "fp", None)
    await store.save(make("early", deadline=30.0, warn_at=10.0), "fp", None)
    await store.save(make("idle"), "fp", None)
    await store.save(make("mid", deadline=20.0), "fp", None)
    assert [s.session.key for s in await store.due(5.0)] == []
    assert [s.session.key for s in await store.due(25.0)] == ["early", "mid"]  # warn at 10
    assert [s.session.key for s in await store.due(100.0)] == ["early", "mid", "late"]
    assert [s.session.key for s in await store.list()] == ["early", "idle", "late", "mid"]


async def test_stored_data_is_a_copy(store: Store) -> None:
    session = make(data={"xs": [1, 2]})
    await store.save(session, "fp", None)
    session.data["xs"].append(3)
    got = await store.load("k")
    assert got is not None and got.session.data == {"xs": [1, 2]}


async def test_sqlite_survives_reopening_and_skips_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = SqliteStore(path)
    await first.save(make("good", deadline=1.0), "fp", None)
    await first.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO sessions VALUES ('bad', 'spec', 'fp', 'a', 0.5, 99, '{oops')")
    second = SqliteStore(path)
    try:
        assert [s.session.key for s in await second.list()] == ["good"]
        assert [s.session.key for s in await second.due(10.0)] == ["good"]
        with pytest.raises(StoreError, match="not JSON"):
            await second.load("bad")
        assert await second.delete("bad") is True  # the admin way out
    finally:
        await second.close()


def test_open_store(tmp_path: Path) -> None:
    assert isinstance(open_store("memory"), MemoryStore)
    s = open_store(str(tmp_path / "a.db"))
    assert isinstance(s, SqliteStore) and s.path == str(tmp_path / "a.db")
    s2 = open_store(f"sqlite://{tmp_path}/b.db")
    assert isinstance(s2, SqliteStore) and s2.path == f"{tmp_path}/b.db"
    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("ftp://x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "no" / "such" / "dir.db"))
    with pytest.raises(StoreError, match="non-empty"):
        open_store("")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(data=st.dictionaries(st.text(), json_values, max_size=5),
       deadline=st.none() | st.floats(0, 1e12), key=st.text(min_size=1))
def test_encoding_round_trips(data: dict[str, Any], deadline: float | None, key: str) -> None:
    session = make(key, deadline=deadline, data=data, generation=7)
    back = decode_session(encode_session(session))
    assert back == session and back.data == data


@pytest.mark.parametrize("text, problem", [
    ("[]", "JSON object"),
    ('{"key": "k", "spec": "s", "state": ""}', "'state'"),
    ('{"key": "k", "spec": "s", "state": "a", "data": [], "history": []}', "data"),
    ('{"key": "k", "spec": "s", "state": "a", "data": {}, "history": ["a"], "generation": -1}',
     "generation"),
    ('{"key": "k", "spec": "s", "state": "a", "data": {}, "history": ["a"], "generation": 0,'
     ' "started": "x", "updated": 1}', "started"),
])
def test_decoding_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(StoreError, match=problem):
        decode_session(text)
