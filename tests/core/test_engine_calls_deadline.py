"""Regression (found by the testing kit's machine at CI's full example count): a deadline
set from outside (`Engine.set_deadline`, AstrBot's `keep`) on a session running a
sub-conversation moved only the root's timer; the child's own older deadline came back at
its next KEEP step, in the past."""

from __future__ import annotations

from convo_fsm import KEEP, STOP, Engine, On, Spec, State, Timeout, VirtualClock
from convo_fsm.spec import Call

CHILD = Spec(name="child", initial="c", states=[
    State("c", on=[On("next", STOP), On("a", KEEP, reset_timeout=False)],
          timeout=Timeout(0.5, "c"))])
PARENT = Spec(name="parent", initial="p", states=[
    State("p", on=[On("next", STOP), On("a", "p", reset_timeout=False)],
          call=Call(CHILD, on_end={"*": "p"}, timeout="paused"))])


async def test_set_deadline_moves_the_running_childs_timer() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock)
    await engine.start(PARENT, "k")
    assert engine.session("k").deadline == 0.5  # type: ignore[union-attr]
    engine.set_deadline("k", 2.0)
    await clock.advance(1.5)
    assert await engine.deliver("k", "/a")  # the child keeps, without resetting its timer
    session = engine.session("k")
    assert session is not None and session.deadline == 2.0  # not 0.5, in the past
    await clock.advance(0.5)
    session = engine.session("k")  # the child's timeout at 2.0 re-entered its state
    assert session is not None and session.deadline == 2.5
    await engine.close()
