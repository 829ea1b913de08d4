"""Faults found by adversarial testing of the engine (issue 12), one regression test each,
written from the fault's description: each failed before its fix."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from convo_fsm import (
    KEEP,
    STOP,
    AsyncioClock,
    Context,
    Engine,
    Message,
    On,
    Spec,
    SpecError,
    State,
    Timeout,
    VirtualClock,
    by_group,
    by_member,
)
from convo_fsm.engine import EngineClosed
from convo_fsm.session import DataError
from convo_fsm.step import Policy
from convo_fsm.storage import MemoryStore, SqliteStore, StoreError


async def hangs(ctx: Context) -> bool:
    await asyncio.get_running_loop().create_future()  # never done
    return True


def say(text: str) -> Any:
    def action(ctx: Context) -> None:
        ctx.reply(text)
    action.__qualname__ = f"say {text}"
    return action


TIMED = Spec(name="timed", initial="a", states=[
    State("a", on=[On("message", KEEP)], timeout=Timeout(0.1, STOP, action=say("bye")))])
GUARDED = Spec(name="guarded", initial="a", states=[
    State("a", on=[On("message", KEEP, guard=hangs), On("quit", STOP)],
          timeout=Timeout(0.1, STOP, action=say("guard cut")))])


async def test_a_hanging_async_guard_holds_up_no_timer_in_real_time() -> None:
    """100 sessions with 0.1 s timeouts all end on time while one key's async guard hangs
    forever; the guard's own timeout cuts it short (the event is handed back)."""
    ended: list[str] = []
    all_ended = asyncio.Event()

    def on_end(e: Any) -> None:
        ended.append(e.reason)
        if len(ended) == 101:
            all_ended.set()

    engine = Engine(clock=AsyncioClock(), on_end=on_end)
    await engine.start(GUARDED, "g")
    for i in range(100):
        await engine.start(TIMED, f"k{i}")
    stuck = asyncio.ensure_future(engine.deliver("g", "hello"))
    await asyncio.wait_for(all_ended.wait(), timeout=10)  # a bounded wait on a condition
    assert ended.count("timeout") == 101 and len(engine) == 0
    assert await asyncio.wait_for(stuck, timeout=5) is False  # the guard never decided
    assert [r.text for r in engine.outbox].count("bye") == 100
    await engine.close()


async def test_virtual_advance_returns_past_a_hanging_guard() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(GUARDED, "g")
    await engine.start(TIMED, "t")
    stuck = asyncio.ensure_future(engine.deliver("g", "hello"))
    await asyncio.sleep(0)
    assert await asyncio.wait_for(clock.advance(1), timeout=5) == 2
    assert sorted(r.text for r in engine.outbox) == ["bye", "guard cut"]
    assert stuck.done() and stuck.result() is False
    await engine.close()


async def test_an_action_swallowing_cancellation_does_not_stop_other_timers() -> None:
    """Like an AstrBot handler with a bare `except:`: the key stays busy, every other key's
    timeout fires anyway."""
    gate = asyncio.Event()

    async def stubborn(ctx: Context) -> None:
        while not gate.is_set():
            with contextlib.suppress(BaseException):  # the fault under test: a bare except
                await gate.wait()

    spec = Spec(name="stubborn", initial="a", states=[
        State("a", on=[On("message", KEEP, action=stubborn)], timeout=Timeout(1, STOP))])
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(spec, "s")
    for i in range(5):
        await engine.start(TIMED, f"k{i}")
    busy = asyncio.ensure_future(engine.deliver("s", "go"))
    await asyncio.sleep(0)
    await asyncio.wait_for(clock.advance(2), timeout=5)
    assert [r.text for r in engine.outbox] == ["bye"] * 5
    assert "s" in engine  # its timeout waits for the turn the action will not give up
    gate.set()
    assert await asyncio.wait_for(busy, timeout=5)
    await clock.advance(0)
    assert "s" not in engine  # and then it fired
    await engine.close()


async def test_a_sync_timer_action_raising_cancelled_error_ends_only_its_session() -> None:
    def bad(ctx: Context) -> None:
        raise asyncio.CancelledError

    errors: list[tuple[str, BaseException]] = []
    spec = Spec(name="bad-timer", initial="a", states=[
        State("a", on=[On("quit", STOP)], timeout=Timeout(1, STOP, action=bad))])
    clock = VirtualClock()
    engine = Engine(clock=clock, on_error=lambda k, e: errors.append((k, e)))
    await engine.start(spec, "bad")
    await engine.start(TIMED, "later")
    engine.set_deadline("later", 5)
    await clock.advance(10)  # the runner survives the first timer's CancelledError
    assert [k for k, _ in errors] == ["bad"]
    assert isinstance(errors[0][1], asyncio.CancelledError)
    assert [r.text for r in engine.outbox] == ["bye"] and len(engine) == 0
    await engine.close()


@pytest.mark.parametrize("after", [math.nan, math.inf, -math.inf, 1e300, 0, -1])
def test_timeouts_must_be_finite_and_representable(after: float) -> None:
    with pytest.raises(SpecError, match="timeout after") as err:
        Spec(name="t", initial="a",
             states=[State("a", on=[On("x", STOP)], timeout=Timeout(after, STOP))])
    assert err.value.state == "a"


@pytest.mark.parametrize("deadline", [math.nan, math.inf, 1e300, "5", True])
async def test_bad_deadlines_are_refused_and_other_sessions_keep_their_order(
        deadline: Any) -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock)
    for i in range(50):
        await engine.start(TIMED, f"k{i}")
        engine.set_deadline(f"k{i}", 1 + i)
    await engine.start(TIMED, "victim")
    with pytest.raises(ValueError, match="deadline"):
        engine.set_deadline("victim", deadline)
    ended: list[tuple[float, str]] = []
    for i in range(50):
        engine.wait_ended(f"k{i}").add_done_callback(
            lambda f: ended.append((clock.now(), f.result().session.key)))
    await clock.advance(60)
    assert ended == [(1.0 + i, f"k{i}") for i in range(50)]  # none late, none early
    await engine.close()


STORE_SPEC = Spec(name="form", initial="a", states=[
    State("a", on=[On("message", KEEP, action=lambda ctx: ctx.data.update(eval(ctx.text))),
                   On("quit", STOP)])])


@pytest.mark.parametrize(("value", "path"), [
    ("{'t': '\\ud83d'}", "data['t']"),  # half an emoji
    ("{'n': {1: 'x'}}", "data['n'][1]"),
    ("{'p': (1, 2)}", "data['p']"),
    ("{'f': float('nan')}", "data['f']"),
])
async def test_data_a_store_would_change_is_refused_at_commit(value: str, path: str) -> None:
    store = MemoryStore()
    errors: list[BaseException] = []
    engine = Engine(clock=VirtualClock(), store=store, on_error=lambda k, e: errors.append(e))
    await engine.start(STORE_SPEC, "k", data={"answers": ["a1"]})
    assert await engine.deliver("k", value)
    assert len(errors) == 1 and isinstance(errors[0], DataError) and errors[0].path == path
    assert "k" not in engine  # the step was refused loudly, never acknowledged in silence
    await engine.start(STORE_SPEC, "k2")
    assert await engine.deliver("k2", "{'ok': [1, 'two', None, 2.5, True]}")
    stored = await store.load("k2")
    assert stored is not None and stored.session.data == {"ok": [1, "two", None, 2.5, True]}
    await engine.close()


async def test_start_refuses_data_naming_the_key_path() -> None:
    engine = Engine(clock=VirtualClock())
    with pytest.raises(DataError, match=r"data\['a'\]\[0\]"):
        await engine.start(STORE_SPEC, "k", data={"a": [("t",)]})
    assert len(engine) == 0
    await engine.close()


def test_generator_guards_and_actions_are_refused() -> None:
    def gen(ctx: Context) -> Any:
        yield True

    async def agen(ctx: Context) -> Any:
        yield True

    for fn in (gen, agen):
        with pytest.raises(SpecError, match="generator") as err:
            Spec(name="g", initial="a", states=[State("a", on=[On("x", STOP, guard=fn)])])
        assert (err.value.state, err.value.event) == ("a", "x")
        with pytest.raises(SpecError, match="generator"):
            Spec(name="g", initial="a", states=[State("a", on=[On("x", STOP, action=fn)])])


def test_member_and_group_keys_never_collide() -> None:
    member = Message("hi", sender="bob", group="g1")
    group = Message("hi", sender="eve", group="g1:bob")
    assert by_group(group) != by_member(member)
    odd = [Message("x", sender=s, group=g, platform=p)
           for p in ("a", "a:b", "a%3Ab") for g in (None, "g", "g:h", "g%h") for s in ("s", "s:t")]
    keys = {f(m) for m in odd for f in (by_member, by_group)}
    # Who a key stands for: in a private chat, the sender (member and group keys are the
    # same on purpose); in a group, the member, or the whole group. Nothing else meets.
    identities = ({("user", m.platform, m.sender) for m in odd if m.group is None}
                  | {("member", m.platform, m.group, m.sender) for m in odd if m.group}
                  | {("group", m.platform, m.group) for m in odd if m.group})
    assert len(keys) == len(identities) == 33


async def test_a_full_member_inbox_hands_the_event_back_not_to_the_group() -> None:
    gate = asyncio.Event()

    async def slow(ctx: Context) -> None:
        await gate.wait()

    solo = Spec(name="solo", initial="a", queue_limit=1, states=[
        State("a", on=[On("message", KEEP, action=slow), On("quit", STOP)])])
    table = Spec(name="table", initial="a", states=[
        State("a", on=[On("message", KEEP, action=say("group got it")), On("quit", STOP)])])
    engine = Engine(clock=VirtualClock())
    ann = Message("hi", sender="ann", group="g")
    await engine.start(solo, engine.key("member", ann))
    await engine.start(table, engine.key("group", ann))
    first = asyncio.ensure_future(engine.dispatch(ann))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(engine.dispatch(ann))  # fills the inbox (limit 1)
    await asyncio.sleep(0)
    assert await engine.dispatch(ann) is False  # full: handed back to the host
    assert [r.text for r in engine.outbox] == []  # and not given to the group's game
    gate.set()
    assert await first and await queued
    await engine.close()


async def test_close_with_a_start_waiting_for_its_turn_leaves_nothing_alive() -> None:
    gate = asyncio.Event()

    async def slow(ctx: Context) -> None:
        await gate.wait()

    spec = Spec(name="s", initial="a", states=[
        State("a", on=[On("message", KEEP, action=slow), On("quit", STOP)])])
    engine = Engine(clock=VirtualClock())
    await engine.start(spec, "k")
    busy = asyncio.ensure_future(engine.deliver("k", "x"))
    await asyncio.sleep(0)
    pending = asyncio.ensure_future(engine.start(spec, "k", replace=True))
    other = asyncio.ensure_future(engine.start(spec, "k2"))
    await asyncio.sleep(0)
    await engine.close()
    results = await asyncio.gather(pending, other, busy, return_exceptions=True)
    assert len(engine) == 0, "a start waiting for its turn came alive after close()"
    assert isinstance(results[0], EngineClosed)
    with pytest.raises(EngineClosed):
        await engine.start(spec, "k3")
    with pytest.raises(EngineClosed):
        await engine.dispatch(Message("hi", sender="a"))
    with pytest.raises(EngineClosed):
        await engine.deliver("k", "x")


async def test_a_failing_async_send_is_reported_not_left_unretrieved(
        caplog: pytest.LogCaptureFixture) -> None:
    async def send(reply: Any) -> None:
        raise ConnectionError("chat server gone")

    errors: list[tuple[str, BaseException]] = []
    engine = Engine(clock=VirtualClock(), send=send, on_error=lambda k, e: errors.append((k, e)))
    await engine.start(TIMED, "k")
    with warnings.catch_warnings(), caplog.at_level(logging.ERROR):
        warnings.simplefilter("error")
        assert await engine.deliver("k", "hi") is True
        await engine.clock.advance(1)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        gc.collect()
    assert [(k, type(e)) for k, e in errors] == [("k", ConnectionError)]
    assert "Task exception was never retrieved" not in caplog.text
    await engine.close()


# -- store faults ----------------------------------------------------------------------------
SPEC = Spec(name="keep", initial="a", states=[
    State("a", on=[On("message", KEEP), On("quit", STOP)], timeout=Timeout(60, STOP))])


async def test_a_row_that_is_not_utf8_is_skipped_and_the_good_ones_come_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    engine = Engine(clock=VirtualClock(), store=store)
    for key in ("good1", "bad", "good2"):
        await engine.start(SPEC, key)
    await engine.close()
    await store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE sessions SET body = CAST(X'7B22FF' AS TEXT) WHERE key = 'bad'")
    db.commit()
    db.close()
    engine2 = Engine(clock=VirtualClock(), store=SqliteStore(path))
    with caplog.at_level(logging.WARNING, "convo_fsm"):
        live = await engine2.restore([SPEC])
    assert sorted(s.key for s in live) == ["good1", "good2"]
    assert "'bad'" in caplog.text and "UTF-8" in caplog.text
    await engine2.close()


async def test_reset_restore_never_deletes_a_record_before_its_replacement(
        tmp_path: Path) -> None:
    old = Spec(name="form", initial="gone", states=[State("gone", on=[On("quit", STOP)])])
    new = Spec(name="form", initial="start", states=[State("start", on=[On("quit", STOP)])])
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(old, "k", data={"answers": [1, 2]})
    await engine.close()

    class Failing(SqliteStore):
        async def save(self, session: Any, fingerprint: str, expect: int | None) -> int:
            raise OSError("disk full")

    broken = Failing(path)
    engine2 = Engine(clock=VirtualClock(), store=broken)
    await engine2.restore([new], {"form": Policy(on_missing="reset")})
    await engine2.close()
    kept = await SqliteStore(path).list()
    assert [(s.session.state, s.session.data) for s in kept] == [("gone", {"answers": [1, 2]})]
    engine3 = Engine(clock=VirtualClock(), store=SqliteStore(path))
    live = await engine3.restore([new], {"form": Policy(on_missing="reset")})
    assert [(s.state, s.data) for s in live] == [("start", {"answers": [1, 2]})]
    await engine3.close()
    kept = await SqliteStore(path).list()
    assert [(s.session.state, s.session.data) for s in kept] == [("start", {"answers": [1, 2]})]


async def test_a_second_engine_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path)  # create it
    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\n"
         "from convo_fsm.storage import SqliteStore\n"
         f"s = SqliteStore({str(path)!r}); s.claim(); print('ready', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(owner.stdout.readline), timeout=30)
        assert line.strip() == "ready"
        with pytest.raises(StoreError, match=r"in use by another engine \(pid \d+"):
            Engine(clock=VirtualClock(), store=SqliteStore(path))
        readers = await SqliteStore(path).list()  # readers (convo-fsm sessions) still may
        assert readers == []
    finally:
        owner.kill()
        owner.wait(timeout=30)
    engine = Engine(clock=VirtualClock(), store=SqliteStore(path))  # its lock died with it
    await engine.close()


async def test_sync_guards_and_actions_cost_no_coroutine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step whose guards and actions are all synchronous runs without awaiting anything:
    its guards never go through `achoose`, its actions never through `finish`."""
    import convo_fsm.engine.delivery as core

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a coroutine path was taken for sync guards and actions")

    spec = Spec(name="sync", initial="a", states=[State("a", on=[
        On("message", KEEP, guard=lambda ctx: ctx.text == "no", action=say("no")),
        On("message", KEEP, guard=lambda ctx: True, action=say("yes")),
        On("quit", STOP)])])
    engine = Engine(clock=VirtualClock())
    await engine.start(spec, "k")
    monkeypatch.setattr(core, "achoose", forbidden)
    monkeypatch.setattr(core, "finish", forbidden)
    assert await engine.deliver("k", "hi") and await engine.deliver("k", "no")
    assert [r.text for r in engine.outbox] == ["yes", "no"]
    await engine.close()


async def test_an_async_guard_after_sync_ones_is_awaited_and_can_still_fail() -> None:
    async def slow_yes(ctx: Context) -> bool:
        await asyncio.sleep(0)
        return ctx.text == "yes"

    def boom(ctx: Context) -> bool:
        raise ValueError("guard broke")

    spec = Spec(name="mixed", initial="a", states=[State("a", on=[
        On("message", KEEP, guard=lambda ctx: False),
        On("message", KEEP, guard=slow_yes, action=say("async yes")),
        On("message", STOP, guard=boom),
        On("quit", STOP)])])
    errors: list[BaseException] = []
    engine = Engine(clock=VirtualClock(), on_error=lambda k, e: errors.append(e))
    await engine.start(spec, "k")
    assert await engine.deliver("k", "yes")
    assert [r.text for r in engine.outbox] == ["async yes"]
    assert await engine.deliver("k", "other") and "k" not in engine  # boom: ends with error
    assert [str(e) for e in errors] == ["guard broke"]
    await engine.close()


async def test_a_timer_step_that_raises_never_leaves_its_key_busy() -> None:
    """With a store, a due timer takes the key's turn; if its step raises (here a trace hook),
    the turn is released all the same (it used to stay taken, so the key was busy forever)."""
    from convo_fsm.engine import TraceRecord

    def trace(record: TraceRecord) -> None:
        if record.kind == "step" and record.name == "timeout":
            raise RuntimeError("trace hook broke")

    clock = VirtualClock()
    engine = Engine(clock=clock, store=MemoryStore(), trace=trace)
    await engine.start(TIMED, "k")
    with pytest.raises(RuntimeError, match="trace hook broke"):
        await clock.advance(1)
    assert list(engine.busy_keys()) == []
    await engine.close()
