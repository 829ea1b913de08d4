"""The step builds its named tuples without their `__new__` on the per-event paths
(a speed-up): the values must be exactly what the classes build."""

from __future__ import annotations

from typing import Any

from convo_fsm import KEEP, STOP, Arm, Input, On, Result, Run, Session, Spec, State, Timeout
from convo_fsm.step import new_session, step


def act(ctx: Any) -> None: ...


SPEC = Spec(name="fast", initial="a", states=[
    State("a", on=[On("stay", KEEP, action=act), On("hold", KEEP), On("b", "b")],
          timeout=Timeout(10, STOP, warn_before=4, warn=act)),
    State("b", on=[On("quit", STOP)], timeout=Timeout(5, STOP))],
    history_limit=3)


def test_keep_with_an_action_builds_the_same_values_as_the_classes() -> None:
    s = new_session(SPEC, "k", 0.0, {"n": 1}).session
    r = step(SPEC, s, Input("stay"), 3.0)
    assert type(r) is Result and type(r.session) is Session
    assert [type(e) for e in r.effects] == [Arm, Run]
    assert r == Result(Session("k", "fast", "a", {"n": 1}, 13.0, 9.0, 1, ("a",), 0.0, 3.0),
                       (Arm(13.0, 9.0), Run(act, "action")), True)
    assert r.handled is True and r.session.data is s.data  # the session's own dict, kept


def test_keep_without_an_action_and_a_move_build_the_same_values() -> None:
    s = new_session(SPEC, "k", 0.0).session
    r = step(SPEC, s, Input("hold"), 2.0)
    assert r == Result(Session("k", "fast", "a", {}, 12.0, 8.0, 1, ("a",), 0.0, 2.0),
                       (Arm(12.0, 8.0),))
    moved = step(SPEC, r.session, Input("b"), 4.0)
    assert type(moved.session) is Session
    assert moved.session == Session("k", "fast", "b", {}, 9.0, None, 2, ("a", "b"), 0.0, 4.0)
    assert moved.session._replace(state="a").state == "a"  # still a working named tuple
