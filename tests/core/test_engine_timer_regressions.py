"""Regressions found by the testing kit's state machine (convo_fsm.testing.hypothesis)."""

from __future__ import annotations

import asyncio

import pytest

from convo_fsm import KEEP, STOP, Busy, Context, Engine, On, Spec, State, Timeout, VirtualClock
from convo_fsm.testing import ConversationTester, areplay
from convo_fsm.testing.transcript import is_input


def note(ctx: Context) -> None:
    ctx.reply(f"{ctx.name} {ctx.key} at {ctx.now:g}")


LOOP = Spec(name="loop-timeout", initial="a", states=[
    State("a", on=[On("bye", STOP)], timeout=Timeout(30, KEEP, action=note))])


async def test_a_restarted_session_does_not_fire_the_old_sessions_timer() -> None:
    # A new session on a key counts generations from 0 again: the old session's heap entry
    # (deadline 30, generation 0) used to fire for the new one (deadline 40), 10 s early.
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(LOOP, "k")
    await clock.advance(10)
    assert engine.stop("k")
    await engine.start(LOOP, "k")
    assert engine.pending_timers() == 1
    await clock.advance(25)  # t=35: the old deadline (30) passed, the new one (40) not
    assert [r.text for r in engine.outbox] == []
    await clock.advance(5)
    assert [r.text for r in engine.outbox] == ["timeout k at 40"]


async def test_replace_after_a_timeout_does_not_double_fire() -> None:
    # The machine's shrunk case: a 0.5 s KEEP timeout fired once (generation 1, next at 1.0),
    # a replacing start at 0.5 (generation 0, deadline 1.0). At 1.0 the new session's timeout
    # fires (now generation 1, deadline 1.5); the old entry (1.0, generation 1) must not.
    spec = Spec(name="half", initial="a", states=[
        State("a", on=[On("bye", STOP)], timeout=Timeout(0.5, KEEP, action=note))])
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(spec, "k")
    await clock.advance(0.5)
    await engine.start(spec, "k", replace=True)
    await clock.advance(0.5)
    assert [r.text for r in engine.outbox] == ["timeout k at 0.5", "timeout k at 1"]
    session = engine.session("k")
    assert session is not None and session.deadline == 1.5


async def test_a_slow_timer_action_does_not_hold_up_other_sessions_timers() -> None:
    # Timer actions used to be awaited inside fire_due: one async timeout action (say, a slow
    # send to the chat platform) delayed every other session's timers until it finished, and
    # VirtualClock.advance hung on it.
    gate = asyncio.Event()

    async def slow_goodbye(ctx: Context) -> None:
        await gate.wait()
        ctx.reply(f"slow goodbye {ctx.key}")

    slow = Spec(name="slow-timeout", initial="a", states=[
        State("a", on=[On("bye", STOP)], timeout=Timeout(1, STOP, action=slow_goodbye))])
    quick = Spec(name="quick-timeout", initial="a", states=[
        State("a", on=[On("bye", STOP)], timeout=Timeout(2, STOP, action=note))])
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(slow, "slow")
    await engine.start(quick, "quick")
    advanced = asyncio.ensure_future(clock.advance(3))
    for _ in range(50):
        await asyncio.sleep(0)
    assert advanced.done(), "the clock is stuck behind a slow timer action"
    assert [r.text for r in engine.outbox] == ["timeout quick at 2"]
    assert "slow" in engine and "slow" in engine.busy_keys()  # its action still holds its turn
    bye = asyncio.ensure_future(engine.deliver("slow", "/bye"))  # waits for the turn
    await asyncio.sleep(0)
    gate.set()
    await clock.advance(0)
    assert await bye is False  # the timeout's STOP came first: handed back, not swallowed
    assert [r.text for r in engine.outbox][1:] == ["slow goodbye slow"]
    assert "slow" not in engine and not list(engine.busy_keys())


async def test_a_slow_timer_action_is_cancelled_by_stop_and_close() -> None:
    started: list[str] = []

    async def forever(ctx: Context) -> None:
        started.append(ctx.key)
        await asyncio.Event().wait()

    spec = Spec(name="forever-timeout", initial="a", states=[
        State("a", on=[On("bye", STOP)], timeout=Timeout(1, "b", action=forever)),
        State("b", on=[On("bye", STOP)])])
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(spec, "x")
    await engine.start(spec, "y")
    await clock.advance(1)
    assert started == ["x", "y"]
    assert engine.stop("x")
    await clock.advance(0)
    assert "x" not in engine.busy_keys()
    await engine.close()
    assert not list(engine.busy_keys()) and engine.footprint()["tasks"] == 0


async def test_a_dispatch_cancelled_mid_action_still_ends_a_final_step() -> None:
    # The machine's shrunk case: an event moved the session to a final state whose action
    # was still running when the host cancelled the dispatch (say, a request timeout). The
    # step was committed but its End never ran: the session lived on in the final state.
    gate = asyncio.Event()

    async def slow(ctx: Context) -> None:
        await gate.wait()

    spec = Spec(name="cancel-mid-action", initial="a", states=[
        State("a", on=[On("message", "done", action=slow)]),
        State("done", final=True)])
    ended: list[str] = []
    engine = Engine(clock=VirtualClock(), on_end=lambda e: ended.append(e.reason))
    await engine.start(spec, "k")
    task = asyncio.ensure_future(engine.deliver("k", "hi"))
    for _ in range(5):
        await asyncio.sleep(0)
    session = engine.session("k")
    assert session is not None and session.state == "done"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "k" not in engine and ended == ["final"]
    assert not list(engine.busy_keys()) and engine.pending_timers() == 0


async def test_an_event_named_start_is_not_a_session_start_in_a_transcript() -> None:
    # A user typing "/start" in a running session is an event named "start"; transcripts
    # (and the machine) took its step for a new session and replayed it as one.
    spec = Spec(name="named-start", initial="a", states=[
        State("a", on=[On("start", "b", action=lambda c: c.reply("again?"))]),
        State("b", on=[On("start", STOP)], timeout=Timeout(5, STOP))])
    t = ConversationTester(spec)
    await t.start("ann")
    assert await t.say("ann", "/start") == ["again?"]
    starts = [r for r in t.transcript if r["kind"] == "step" and r["from"] is None]
    assert len(starts) == 1
    assert sum(1 for r in t.transcript if is_input(r)) == 2  # the start and the event
    assert (await areplay(t.transcript, spec)).ok


async def test_an_interrupted_enter_action_of_a_final_state_still_ends_the_session() -> None:
    # The machine's shrunk case: under Busy.INTERRUPT a timeout moved the session into a
    # final state whose (slow) enter action a new message then interrupted; the rest of
    # the step, its End, was skipped and the session lived on in the final state.
    async def slow(ctx: Context) -> None:
        await asyncio.Event().wait()

    spec = Spec(name="interrupt-final", initial="a", busy=Busy.INTERRUPT, states=[
        State("a", on=[On("message", KEEP)], timeout=Timeout(1, "done")),
        State("done", final=True, enter=slow)])
    clock = VirtualClock()
    ended: list[str] = []
    engine = Engine(clock=clock, on_end=lambda e: ended.append(e.reason))
    await engine.start(spec, "k")
    await clock.advance(1)
    assert "k" in engine.busy_keys()  # the enter action runs
    assert await engine.deliver("k", "hi") is False  # interrupts it, then finds no session
    assert "k" not in engine and ended == ["final"]
    await clock.advance(0)  # the interrupted task lets go of the turn
    assert not list(engine.busy_keys()) and engine.pending_timers() == 0


async def test_a_warning_armed_twice_on_a_busy_key_is_sent_once() -> None:
    # A session adopted again (a store reload re-arms it with the same generation) leaves two
    # heap entries for one warning. Popped while the key is busy, both waited for the turn;
    # the second then stepped the session again although its warning had been sent (warn_at
    # cleared, same generation), and the warning went out twice.
    release = asyncio.Event()

    async def hang(ctx: Context) -> None:
        await release.wait()

    def warn(ctx: Context) -> None:
        ctx.reply("hurry")

    spec = Spec(name="warned", initial="a", states=[
        State("a", on=[On("hang", KEEP, action=hang, reset_timeout=False)],
              timeout=Timeout(30, STOP, warn_before=10, warn=warn))])
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(spec, "k")
    session = engine.session("k")
    assert session is not None
    engine.adopt(session)  # the same session armed again: twin entries
    busy = asyncio.ensure_future(engine.deliver("k", "/hang"))
    await asyncio.sleep(0)
    assert "k" in engine.busy_keys()
    await clock.advance(25)  # the warning (at 20) fell due while the action hangs
    release.set()
    await busy
    assert [r.text for r in engine.outbox] == ["hurry"]
    await clock.advance(10)
    assert len(engine) == 0
