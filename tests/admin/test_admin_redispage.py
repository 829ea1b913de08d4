"""The Redis store's sessions pages and counts (admin.redispage) against the plain reference
(`query` over every stored record), on a real Redis server."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from admin_kit import QUIZ
from hypothesis import given, settings
from hypothesis import strategies as st
from test_admin_sqlpage import _seen, _session, sessions

from convo_fsm.admin import StoreSource, query, redispage, store_app
from convo_fsm.admin.redispage import RedisPages
from convo_fsm.admin.source import state_counts
from convo_fsm.session import Session
from convo_fsm.storage import RedisStore, Stored


async def _filled(url: str, rows: list[Session]) -> RedisStore:
    store = RedisStore.from_url(url, prefix=f"admin-page:{uuid.uuid4().hex[:12]}:")
    for s in rows:
        await store.save(s, "fp", None)
    return store


async def _clear(store: RedisStore) -> None:
    keys = [k async for k in store.redis.scan_iter(match=store.prefix + "*")]
    if keys:
        await store.redis.delete(*keys)
    await store.close()


@settings(max_examples=60, deadline=None)
@given(sessions, st.sampled_from(["", "", "a", "A:", "é", "ss", "k"]),
       st.sampled_from(["", "", "quiz"]), st.sampled_from(["", "", "b"]),
       st.one_of(st.integers(0, 4), st.integers(0, 45)), st.integers(1, 12))
def test_a_redis_page_is_the_reference_page(redis_url: str, rows: list[Session], text: str,
                                            spec: str, state: str, offset: int,
                                            limit: int) -> None:
    async def go() -> None:
        store = await _filled(redis_url, rows)
        chunk = redispage.CHUNK
        redispage.CHUNK = 3  # small stores cross chunk edges too (key-search walk, counts)
        try:
            pages = RedisPages(store)
            found = await pages.page(text=text, spec=spec, state=state, offset=offset,
                                     limit=limit)
            expected = query(rows, text=text, spec=spec, state=state, offset=offset,
                             limit=limit)
            assert found[0] == expected.total
            assert _seen(found[1]) == _seen(expected.rows)
            assert await pages.counts() == state_counts(rows)
        finally:
            redispage.CHUNK = chunk
            await _clear(store)

    asyncio.run(go())


class _NoListing(RedisStore):
    async def list(self) -> list[Stored]:
        raise AssertionError("the admin read every record")


async def test_the_redis_store_admin_pages_and_counts_without_a_listing(redis_url: str) -> None:
    store = await _filled(redis_url, [
        _session(f"local:user:{k}", QUIZ.name, "reminded" if i % 2 else "asking", 10.0 + i,
                 None) for i, k in enumerate(["<b>x</b>", "b", "c"])])
    try:
        admin = store_app(_NoListing(store.redis, prefix=store.prefix), [QUIZ],
                          token="store-admin-token")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                     base_url="http://t") as c:
            listing = (await c.get("/sessions")).text
            assert "3</span> sessions" in listing and "<b>x</b>" not in listing
            assert listing.index("&lt;b&gt;x") < listing.index("local:user:b")
            found = (await c.get("/sessions", params={"q": "USER:C"})).text
            assert "1</span> sessions" in found and "local:user:b" not in found
            metrics = (await c.get("/metrics")).text
            assert 'convo_fsm_live_sessions{spec="quiz",state="asking"} 2.0' in metrics
            found = (await c.get("/sessions", params={"state": "reminded"})).text
            assert "1</span> sessions" in found and "local:user:b" in found
        source = admin.source
        assert isinstance(source, StoreSource)
        page = await source.page(spec="quiz", state="asking", text="USER:C")
        assert [s.key for s in page.rows] == ["local:user:c"]
    finally:
        await _clear(store)
