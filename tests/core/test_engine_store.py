"""The engine's optional `store` hook (details in tests/storage/): without a store nothing
changes; with one, the commit happens after the actions ran and before deliver returns."""

from __future__ import annotations

from convo_fsm import KEEP, STOP, Context, Engine, On, Spec, State, VirtualClock
from convo_fsm.storage import MemoryStore


def remember(ctx: Context) -> None:
    ctx.data.setdefault("seen", []).append(ctx.text)


SPEC = Spec("echo", "on", [State("on", on=[On("message", KEEP, action=remember),
                                          On("stop", STOP)])])


async def test_without_a_store_nothing_is_kept() -> None:
    engine = Engine(clock=VirtualClock())
    await engine.start(SPEC, "k")
    assert await engine.deliver("k", "hi")
    assert engine._store is None and engine.footprint()["tasks"] == 0


async def test_with_a_store_deliver_returns_after_the_commit() -> None:
    store = MemoryStore()
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(SPEC, "k")
    assert await engine.deliver("k", "a")
    got = await store.load("k")
    assert got is not None and got.session.data == {"seen": ["a"]}
    assert await engine.deliver("k", "/stop")
    assert await store.load("k") is None and engine._store is not None and engine._store._revs == {}
