"""Redis: the engine on a RedisStore against a real redis-server (see conftest.py). Several
worker processes sharing keys are the fleet's: tests/distributed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from convo_fsm import KEEP, STOP, Context, Engine, On, Spec, State, Timeout, VirtualClock
from convo_fsm.storage import RedisStore, StoreError, open_store

pytest.importorskip("redis")


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, prefix=redis_prefix)
    yield s
    await s.close()


def spec(timeout: float = 3600.0) -> Spec:
    def record(ctx: Context) -> None:
        ctx.data.setdefault("seen", []).append(ctx.text)
        ctx.reply(f"got {ctx.text}")

    def fired(ctx: Context) -> None:
        ctx.data["fired"] = ctx.data.get("fired", 0) + 1
        ctx.reply("fired")

    return Spec("tally", "on", [
        State("on", on=[On("message", KEEP, action=record, reset_timeout=False)],
              timeout=Timeout(timeout, "timed", action=fired)),
        State("timed", on=[On("message", KEEP, action=record)]),
    ], any_state=[On("done", STOP)])


async def data(store: RedisStore, key: str) -> dict[str, Any]:
    got = await store.load(key)
    assert got is not None, key
    return got.session.data


async def test_open_store_and_a_bad_record(store: RedisStore, redis_url: str) -> None:
    opened = open_store(redis_url)
    assert isinstance(opened, RedisStore)
    await opened.close()
    await store.redis.hset(store.k("s", "bad"), mapping={"body": "{oops", "fp": "x", "rev": 1})
    await store.redis.sadd(store.k("all"), "bad")
    assert await store.list() == []  # skipped, reported
    with pytest.raises(StoreError, match="not JSON"):
        await store.load("bad")
    assert await store.delete("bad") is True


def test_sessions_cli_on_redis(redis_url: str, redis_prefix: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from convo_fsm.cli import main

    url = f"{redis_url}?prefix={redis_prefix}"

    async def fill() -> None:
        store = RedisStore.from_url(url)
        assert store.prefix == redis_prefix
        engine, tally = Engine(clock=VirtualClock(), store=store), spec()
        await engine.start(tally, "a")
        await engine.start(tally, "b")
        await store.close()

    async def keys() -> list[str]:
        store = RedisStore.from_url(url)
        try:
            return [s.session.key for s in await store.list()]
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["sessions", "--store", url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["key"], r["state"]) for r in rows] == [("a", "on"), ("b", "on")]
    assert main(["sessions", "--store", url, "--stop", "a"]) == 0
    assert asyncio.run(keys()) == ["b"]
    assert main(["sessions", "--store", url, "--force", "b", "timed"]) == 2
    assert "spec 'tally' of 'b' is not a game's: name it with --spec" in capsys.readouterr().err


async def test_an_engine_restarts_on_redis(store: RedisStore) -> None:
    tally = spec(10)
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(tally, "a")
    await engine.deliver("a", "x")
    engine2 = Engine(clock=VirtualClock(15), store=store)
    assert [s.key for s in await engine2.restore([tally])] == ["a"]
    assert [r.text for r in engine2.outbox] == ["fired"]  # due while down: fired at start
    assert await data(store, "a") == {"seen": ["x"], "fired": 1}
