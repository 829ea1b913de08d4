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


async def test_a_busy_keys_warning_does_not_block_other_timers() -> None:
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
    assert [r.text for r in engine.outbox] == ["timeout quick at 2"]
    assert "quick" not in engine
    gate.set()
    assert await held
    await clock.advance(0)
    # The step to "a" was committed at 0 s, before its action ran (deadline 10, warning at 1):
    # that warning ran as soon as the action was over, late but never early, and only once.
    assert [r.text for r in engine.outbox] == ["timeout quick at 2", "warning slow at 3"]
    await clock.advance(7)
    assert [r.text for r in engine.outbox][2:] == ["timeout slow at 10"]
    await engine.close()
