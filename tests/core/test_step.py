"""The pure step: same inputs, same outputs; effects returned, never performed."""

from __future__ import annotations

from typing import Any

import pytest

from convo_fsm import (
    KEEP,
    STOP,
    Arm,
    End,
    Force,
    Input,
    On,
    Run,
    Spec,
    State,
    Timeout,
    TimerFired,
    new_session,
    step,
)


def enter_b(ctx: Any) -> None: ...
def leave_a(ctx: Any) -> None: ...
def act(ctx: Any) -> None: ...
def warn(ctx: Any) -> None: ...
def late(ctx: Any) -> None: ...


SPEC = Spec(
    name="pure",
    initial="a",
    states=[
        State("a", exit=leave_a,
              on=[On("go", "b", action=act), On("stay", KEEP, action=act),
                  On("hold", KEEP, reset_timeout=False),
                  On("num", "b", guard=lambda c: c.text.isdigit())],
              timeout=Timeout(10, "b", action=late, warn_before=4, warn=warn)),
        State("b", enter=enter_b, on=[On("go", "c"), On("quit", STOP, action=act)]),
        State("c", final=True),
    ],
    history_limit=3,
)


def test_new_session_arms_the_initial_timeout() -> None:
    r = new_session(SPEC, "k", 100.0, {"x": 1})
    assert (r.session.state, r.session.deadline, r.session.warn_at) == ("a", 110.0, 106.0)
    assert r.effects == (Arm(110.0, 106.0),)
    assert r.session.data == {"x": 1}


def test_transition_runs_exit_action_enter_in_order_and_disarms() -> None:
    s = new_session(SPEC, "k", 0.0).session
    r = step(SPEC, s, Input("go"), 5.0)
    assert r.session.state == "b"
    assert r.session.generation == s.generation + 1
    assert r.effects == (Arm(None, None), Run(leave_a, "exit"), Run(act, "action"),
                         Run(enter_b, "enter"))
    assert r.session.history == ("a", "b")


def test_step_is_pure_same_inputs_same_outputs() -> None:
    s = new_session(SPEC, "k", 0.0).session
    assert step(SPEC, s, Input("go"), 5.0) == step(SPEC, s, Input("go"), 5.0)
    assert s.state == "a"  # the input session is untouched


def test_keep_restarts_the_timeout_without_exit_or_enter() -> None:
    s = new_session(SPEC, "k", 0.0).session
    r = step(SPEC, s, Input("stay"), 7.0)
    assert r.session.state == "a"
    assert (r.session.deadline, r.session.warn_at) == (17.0, 13.0)
    assert r.effects == (Arm(17.0, 13.0), Run(act, "action"))


def test_keep_without_reset_leaves_the_deadline() -> None:
    s = new_session(SPEC, "k", 0.0).session
    r = step(SPEC, s, Input("hold"), 7.0)
    assert (r.session.deadline, r.session.generation) == (10.0, s.generation)
    assert r.effects == ()


def test_guard_decides_and_unhandled_events_change_nothing() -> None:
    s = new_session(SPEC, "k", 0.0).session
    assert step(SPEC, s, Input("num", "12"), 1.0).session.state == "b"
    r = step(SPEC, s, Input("num", "twelve"), 1.0)
    assert (r.handled, r.session, r.effects) == (False, s, ())
    assert not step(SPEC, s, Input("unknown"), 1.0).handled


def test_warning_then_timeout_moves_to_another_state() -> None:
    s = new_session(SPEC, "k", 0.0).session
    w = step(SPEC, s, TimerFired(warning=True), 6.0)
    assert w.effects == (Run(warn, "warn"),)
    assert w.session.warn_at is None and w.session.deadline == 10.0
    t = step(SPEC, w.session, TimerFired(), 10.0)
    assert t.session.state == "b"
    assert t.effects == (Arm(None, None), Run(leave_a, "exit"), Run(late, "timeout"),
                         Run(enter_b, "enter"))


def test_stop_and_final() -> None:
    b = step(SPEC, new_session(SPEC, "k", 0.0).session, Input("go"), 1.0).session
    r = step(SPEC, b, Input("quit"), 2.0)
    assert r.effects[-1] == End("stop")
    assert step(SPEC, b, Input("go"), 2.0).effects[-1] == End("final")


def test_force_rearms_and_runs_nothing() -> None:
    b = step(SPEC, new_session(SPEC, "k", 0.0).session, Input("go"), 1.0).session
    r = step(SPEC, b, Force("a"), 3.0)
    assert r.session.state == "a"
    assert r.effects == (Arm(13.0, 9.0),)


def test_history_is_bounded() -> None:
    s = new_session(SPEC, "k", 0.0).session
    for i in range(5):
        s = step(SPEC, s, Force("b" if i % 2 == 0 else "a"), float(i)).session
    assert len(s.history) == 3
    assert s.history == ("b", "a", "b")


def test_async_guard_needs_a_chosen_transition() -> None:
    async def slow(ctx: Any) -> bool:
        return True

    spec = Spec(name="g", initial="a",
                states=[State("a", on=[On("go", STOP, guard=slow)])])
    s = new_session(spec, "k", 0.0).session
    with pytest.raises(TypeError, match="async"):
        step(spec, s, Input("go"), 1.0)
    chosen = spec.lookup("a", "go")[0]
    assert step(spec, s, Input("go", chosen=chosen), 1.0).effects[-1] == End("stop")
