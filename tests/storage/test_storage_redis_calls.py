"""Sub-conversations (issue 14) on Redis: an engine restarted on Redis mid-child resumes it
(the stack persisted in the session's data). Two fleet workers stepping a running child
across a takeover: tests/distributed/test_fleet.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convo_fsm import KEEP, STOP, Call, Context, Engine, On, Spec, State, VirtualClock
from convo_fsm.storage import RedisStore

pytest.importorskip("redis")


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, prefix=redis_prefix)
    yield s
    await s.close()


def count(ctx: Context) -> None:
    ctx.data["n"] = ctx.data.get("n", 0) + 1
    ctx.reply(f"child {ctx.data['n']}")


CHILD = Spec(name="counter-child", initial="counting", states=[
    State("counting", on=[On("message", KEEP, action=count), On("done", "over")]),
    State("over", final=True)])
PARENT = Spec(name="counter-parent", initial="calling", states=[
    State("calling", call=Call(CHILD, on_end={"over": "after"}, data_key="child")),
    State("after", enter=lambda ctx: ctx.reply(f"parent got {ctx.data['child']}"),
          on=[On("message", STOP)])])


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
