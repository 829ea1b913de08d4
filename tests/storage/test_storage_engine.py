"""An engine with a store: commits, ends, restarts (restore), policies, conflicts, faults."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from convo_fsm import KEEP, STOP, Context, Engine, On, Session, Spec, State, Timeout, VirtualClock
from convo_fsm.storage import MemoryStore, Policy, SqliteStore, Store, Stored, fingerprint


def count(ctx: Context) -> None:
    ctx.data["n"] = ctx.data.get("n", 0) + 1
    ctx.reply(f"n={ctx.data['n']}")


def counter(version: int = 1) -> Spec:
    """`ask` (timeout 10 s -> `late`), `late` (timeout 10 s -> STOP), `/done` ends it."""
    ask = "ask" if version == 1 else "asking"  # version 2 renamed the first state
    return Spec(
        name="counter",
        initial=ask,
        states=[
            State(ask, on=[On("message", KEEP, action=count), On("next", "late")],
                  timeout=Timeout(10, "late", action=lambda c: c.reply(f"timeout {c.key}"))),
            State("late", enter=lambda c: c.reply(f"late {c.key}"),
                  on=[On("message", KEEP, action=count)],
                  timeout=Timeout(10, STOP, action=lambda c: c.reply(f"gone {c.key}"))),
        ],
        any_state=[On("done", STOP, action=lambda c: c.reply("bye"))],
    )


SPEC = counter()


def texts(engine: Engine) -> list[str]:
    out = [r.text for r in engine.outbox]
    engine.outbox.clear()
    return out


async def stored(store: Store, key: str) -> Session | None:
    got = await store.load(key)
    return None if got is None else got.session


async def test_each_step_is_committed_with_what_its_actions_did() -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    await engine.start(SPEC, "k")
    s = await stored(store, "k")
    assert s is not None and s.state == "ask" and s.deadline == 10.0
    assert await engine.deliver("k", "hi")
    assert await engine.deliver("k", "hi")
    s = await stored(store, "k")
    assert s is not None and s.data == {"n": 2}  # the action's change to data is committed
    assert await engine.deliver("k", "/next")
    s = await stored(store, "k")
    assert s is not None and s.state == "late" and s.deadline == 10.0
    assert await engine.deliver("k", "/done")
    assert await store.load("k") is None  # an ended session is deleted
    assert not await engine.deliver("k", "hi")  # not consumed: nothing written either
    assert len(store) == 0


async def test_timeouts_stop_force_and_deadlines_are_committed() -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    for key in ("a", "b", "c"):
        await engine.start(SPEC, key)
    await clock.advance(10)  # every `ask` timed out into `late`
    assert {s.session.state for s in await store.list()} == {"late"}
    engine.stop("a")
    engine.force("b", "ask")
    engine.set_deadline("c", 99.0)
    await clock.advance(0)  # let the writes started outside a turn run
    assert await store.load("a") is None
    b, c = await stored(store, "b"), await stored(store, "c")
    assert b is not None and b.state == "ask" and b.deadline == 20.0
    assert c is not None and c.deadline == 99.0
    await engine.close()
    assert [s.session.key for s in await store.list()] == ["b", "c"]  # closing keeps them


async def test_restore_fires_missed_timeouts_at_once_in_deadline_order(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock = VirtualClock()
    first = SqliteStore(path)
    engine = Engine(clock=clock, store=first)
    for key in ("z", "y", "x"):  # started 1 s apart: deadlines 10, 11, 12
        await engine.start(SPEC, key)
        await clock.advance(1)
    await engine.deliver("x", "hello")  # t=3: x's count is committed, its deadline moves to 13
    await engine.deliver("w", "nobody")
    await clock.advance(0.5)
    await engine.start(SPEC, "w")
    await engine.deliver("w", "/next")  # w is `late`: deadline 13.5
    # The process dies here (no close; the kernel drops its lock on the file). A new one
    # starts at t=12.5.
    first.release()
    clock2 = VirtualClock(12.5)
    engine2 = Engine(clock=clock2, store=SqliteStore(path))
    live = await engine2.restore([SPEC])
    assert sorted(s.key for s in live) == ["w", "x", "y", "z"]
    # z (due 10) and y (due 11) fired at start-up, in that order; x and w not yet.
    assert texts(engine2) == ["timeout z", "late z", "timeout y", "late y"]
    x = engine2.session("x")
    assert x is not None and x.state == "ask" and x.data == {"n": 1}
    await clock2.advance(1)
    assert texts(engine2) == ["timeout x", "late x", "gone w"]
    assert await engine2.deliver("x", "again")
    assert texts(engine2) == ["n=2"]  # the data survived the restart
    await clock2.advance(9.5)  # y and z went `late` at 12.5: they end at 22.5; x at 23.5
    # (due at one instant: in the order they were started, z first; their ids survived)
    assert texts(engine2) == ["gone z", "gone y"]
    assert sorted(s.session.key for s in await SqliteStore(path).list()) == ["x"]


async def test_discard_policy_drops_too_old_timeouts() -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    await engine.start(SPEC, "old")
    await clock.advance(5)
    await engine.start(SPEC, "recent")  # deadlines 10 and 15
    engine2 = Engine(clock=VirtualClock(40), store=store)
    live = await engine2.restore([SPEC], {"counter": Policy(discard_after=27)})
    assert [s.key for s in live] == ["recent"]
    assert texts(engine2) == ["timeout recent", "late recent"]
    assert await store.load("old") is None and "old" not in engine2


async def test_restore_leaves_other_specs_and_live_keys_alone() -> None:
    store = MemoryStore()
    other = Spec("other", "s", [State("s", on=[On("message", STOP)])])
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(SPEC, "a")
    await engine.start(other, "b")
    engine2 = Engine(clock=VirtualClock(), store=store)
    assert [s.key for s in await engine2.restore([SPEC])] == ["a"]
    assert "b" not in engine2 and await store.load("b") is not None
    assert await engine2.restore([SPEC]) == []  # already live: not restored twice
    with pytest.raises(RuntimeError, match="needs an engine with a store"):
        await Engine(clock=VirtualClock()).restore([SPEC])
    with pytest.raises(TypeError, match="needs Specs"):
        await engine2.restore(["counter"])  # type: ignore[list-item]


@pytest.mark.parametrize("policy, want_state, want_texts", [
    (Policy(rename={"ask": "asking"}), "asking", []),
    (Policy(on_missing="reset"), "asking", []),
    (Policy(), None, ["This conversation was ended: the bot was updated."]),
    (Policy(end_message="Sorry, new version!"), None, ["Sorry, new version!"]),
])
async def test_a_stored_state_the_new_version_lacks(policy: Policy, want_state: str | None,
                                                   want_texts: list[str]) -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    await engine.start(SPEC, "k")
    await engine.deliver("k", "one")
    v2 = counter(2)
    assert fingerprint(v2) != fingerprint(SPEC)
    engine2 = Engine(clock=VirtualClock(3), store=store)
    await engine2.restore([v2], {"counter": policy})
    assert texts(engine2) == want_texts
    got = await store.load("k")
    if want_state is None:
        assert got is None and "k" not in engine2
        return
    live = engine2.session("k")
    assert live is not None and live.state == want_state and live.data == {"n": 1}
    assert got is not None and got.session.state == want_state
    assert got.fingerprint == fingerprint(v2)
    assert live.deadline == 13.0  # the new state's timeout counts from the restart
    assert await engine2.deliver("k", "two")
    assert texts(engine2) == ["n=2"]


def test_policy_rejects_an_unknown_choice() -> None:
    with pytest.raises(ValueError, match="on_missing"):
        Policy(on_missing="explode")


async def test_an_admin_change_in_the_store_wins() -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    await engine.start(SPEC, "gone")
    await engine.start(SPEC, "moved")
    # Someone else (the `sessions` admin command) deletes one and moves the other.
    await store.delete("gone")
    got = await store.load("moved")
    assert got is not None
    await store.save(got.session._replace(state="late", generation=5), got.fingerprint, got.rev)
    assert await engine.deliver("gone", "hi")  # handled, then the commit finds it deleted
    assert "gone" not in engine and await store.load("gone") is None
    await engine.deliver("moved", "hi")
    live = engine.session("moved")
    assert live is not None and live.state == "late" and live.generation == 5


class BrokenStore(MemoryStore):
    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        raise OSError("disk full")

    async def list(self) -> list[Stored]:
        return []


async def test_a_failing_store_never_ends_a_session(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(clock=VirtualClock(), store=BrokenStore())
    with caplog.at_level(logging.ERROR, "convo_fsm"):
        await engine.start(SPEC, "k")
        assert await engine.deliver("k", "hi")
    assert texts(engine) == ["n=1"]
    assert "disk full" in caplog.text and "commit for 'k' failed" in caplog.text


async def test_replacing_a_session_keeps_the_store_in_step() -> None:
    store = MemoryStore()
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(SPEC, "k")
    await engine.deliver("k", "one")
    await engine.start(SPEC, "k", replace=True, data={"n": 40})
    await engine.deliver("k", "two")
    await engine.close()
    got = await store.load("k")
    assert got is not None and got.session.data == {"n": 41}


async def test_wall_clock_fires_a_restored_deadline() -> None:
    from convo_fsm.storage import WallClock

    store, clock = MemoryStore(), WallClock()
    assert abs(clock.now() - time.time()) < 60
    quick = Spec("quick", "wait", [State("wait", on=[On("message", STOP)],
                                         timeout=Timeout(0.05, STOP,
                                                         action=lambda c: c.reply("late")))])
    # Stored by a process whose clock said "now" in epoch seconds (and that fired nothing).
    first = Engine(clock=VirtualClock(clock.now()), store=store)
    await first.start(quick, "k")
    await first.close()
    engine = Engine(clock=WallClock(), store=store)
    await engine.restore([quick])
    if "k" in engine:  # not yet due when restored: the loop's timer fires it
        ended = await asyncio.wait_for(engine.wait_ended("k"), 30)
        assert ended.reason == "timeout"
    assert texts(engine) == ["late"] and await store.load("k") is None
    await engine.close()
