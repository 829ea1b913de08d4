"""Regression (found by the testing kit's state machine): a warning that falls due while its
key's action runs must not hold up every other session's timers until that action ends."""

from __future__ import annotations

import asyncio

from convo_fsm import STOP, Context, Engine, On, Spec, State, Timeout, VirtualClock

gate = asyncio.Event()


async def slow(ctx: Context) -> None:
    await gate.wait()


def note(ctx: Context) -> None:
    ctx.reply(f"{ctx.name} {ctx.key} at {ctx.now:g}")


SLOW = Spec(name="slow-warned", initial="a", states=[
    State("a", on=[On("message", "a", action=slow), On("bye", STOP)],
          timeout=Timeout(10, STOP, action=note, warn_before=9, warn=note))])
QUICK = Spec(name="quick", initial="a", states=[
    State("a", on=[On("bye", STOP)], timeout=Timeout(2, STOP, action=note))])


async def test_a_busy_keys_warning_cuts_its_action_short_and_blocks_no_other_timer() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(SLOW, "slow")
    await engine.start(QUICK, "quick")
    held = asyncio.ensure_future(engine.deliver("slow", "work"))  # its action waits on gate
    await asyncio.sleep(0)
    # The warning of "slow" falls due at 1 s while its action runs; "quick" times out at 2 s.
    advanced = asyncio.ensure_future(clock.advance(3))
    for _ in range(50):
        await asyncio.sleep(0)
    assert advanced.done(), "the clock is stuck behind the busy key's warning"
    # A timer never waits for a busy key: the warning cut the action short and was sent on
    # time; the step to "a" stays committed (deadline 10), so the event was consumed.
    assert [r.text for r in engine.outbox] == ["warning slow at 1", "timeout quick at 2"]
    assert "quick" not in engine
    assert held.done() and held.result() is True
    assert not gate.is_set() and engine.session("slow") is not None
    await clock.advance(7)
    assert [r.text for r in engine.outbox][2:] == ["timeout slow at 10"]
    await engine.close()
