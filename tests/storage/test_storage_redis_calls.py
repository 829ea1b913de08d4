"""Sub-conversations (issue 14) on Redis: an engine restarted on Redis mid-child resumes it
(the stack persisted in the session's data). Two fleet workers stepping a running child
across a takeover: tests/distributed/test_fleet.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from call_specs import PARENT

from convo_fsm import Engine, VirtualClock
from convo_fsm.storage import RedisStore

pytest.importorskip("redis")


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, prefix=redis_prefix)
    yield s
    await s.close()


async def test_an_engine_restarted_on_redis_resumes_the_child(store: RedisStore) -> None:
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(PARENT, "r")
    await engine.deliver("r", "x")
    engine2 = Engine(clock=VirtualClock(), store=store)
    assert [s.key for s in await engine2.restore([PARENT])] == ["r"]
    await engine2.deliver("r", "y")
    await engine2.deliver("r", "/done")
    assert [r.text for r in engine2.outbox] == ["child 2", "parent got {'n': 2}"]
    await engine2.close()
