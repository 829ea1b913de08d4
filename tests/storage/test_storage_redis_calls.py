"""Sub-conversations (issue 14) on Redis: two workers step a session running a child, the
stack persisted in the session's data; an engine restarted on Redis mid-child resumes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convo_fsm import KEEP, STOP, Call, Context, Engine, On, Reply, Spec, State, VirtualClock
from convo_fsm.storage import RedisStore, RedisWorker

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


async def test_two_workers_step_a_running_child_and_its_ending(store: RedisStore) -> None:
    replies: list[Reply] = []
    a = RedisWorker(store, [PARENT], send=replies.append, poll=0.01)
    b = RedisWorker(store, [PARENT], send=replies.append, poll=0.01)
    async with a, b:
        assert await a.start(PARENT, "k") is not None
        for i in range(6):
            await (a if i % 2 else b).deliver("k", f"m{i}")
        await b.deliver("k", "/done")
    texts = [r.text for r in replies]
    assert texts == [f"child {i}" for i in range(1, 7)] + ["parent got {'n': 6}"]


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
