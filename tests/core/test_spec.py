"""Every validation error names the spec, state and event at fault."""

from __future__ import annotations

from typing import Any

import pytest

from convo_fsm import ANY, KEEP, STOP, On, Spec, SpecError, State, Timeout, classify_text
from convo_fsm.spec import EventError


def noop(ctx: Any) -> None:
    return None


def make(states: list[State], initial: str = "a", **kw: Any) -> Spec:
    return Spec(name="t", initial=initial, states=states, **kw)


def ok_states() -> list[State]:
    return [State("a", on=[On("go", "b")]), State("b", final=True)]


def test_valid_spec_compiles_lookup() -> None:
    spec = make(ok_states(), any_state=[On("exit", STOP)])
    assert [t.target for t in spec.lookup("a", "go")] == ["b"]
    assert [t.target for t in spec.lookup("a", "exit")] == [STOP]
    assert spec.lookup("a", "nonsense") == ()
    assert spec.events == frozenset({"go", "exit"})
    assert spec.final_states == frozenset({"b"})


def test_lookup_priority_state_then_any_state_then_wildcards() -> None:
    spec = make(
        [State("a", on=[On("help", KEEP, action=noop), On(ANY, "b")]), State("b", final=True)],
        any_state=[On("help", STOP), On("exit", STOP), On(ANY, KEEP)],
    )
    # The state names "help" itself: the any-state "help" is overridden, wildcards follow.
    assert [t.target for t in spec.lookup("a", "help")] == [KEEP, "b", KEEP]
    assert [t.target for t in spec.lookup("a", "exit")] == [STOP, "b", KEEP]
    assert [t.target for t in spec.lookup("a", "whatever")] == ["b", KEEP]


def test_any_state_transitions_are_shared_not_copied() -> None:
    exit_ = On("exit", STOP)
    spec = make([State("a", on=[On("go", "b")]), State("b", on=[On("go", "a")])],
                any_state=[exit_])
    assert spec.lookup("a", "exit")[0] is exit_
    assert spec.lookup("b", "exit")[0] is exit_


@pytest.mark.parametrize(
    ("states", "initial", "kw", "fragment", "state", "event"),
    [
        (ok_states(), "zzz", {}, "initial state 'zzz' is not a declared state", None, None),
        ([State("a", on=[On("go", "nowhere")])], "a", {}, "target 'nowhere'", "a", "go"),
        ([State("a", on=[On("go", STOP)]), State("a", final=True)], "a", {},
         "duplicate state", "a", None),
        ([State("a", on=[On("go", STOP)]), State("b", final=True)], "a", {},
         "unreachable", "b", None),
        ([State("a", on=[On("go", KEEP)])], "a", {}, "no exit", "a", None),
        ([State("a", timeout=Timeout(0, STOP))], "a", {}, "after must be a number > 0",
         "a", "timeout"),
        ([State("a", timeout=Timeout(-3, STOP))], "a", {}, "after must be a number > 0",
         "a", "timeout"),
        ([State("a", timeout=Timeout(10, STOP, warn_before=10, warn=noop))], "a", {},
         "warn_before must be > 0 and < after", "a", "timeout"),
        ([State("a", timeout=Timeout(10, STOP, warn_before=3))], "a", {},
         "warn_before and warn go together", "a", "timeout"),
        ([State("a", timeout=Timeout(10, "ghost"))], "a", {}, "target 'ghost'", "a", "timeout"),
        ([State("a", on=[On("go", STOP, guard="yes")])], "a", {},  # type: ignore[arg-type]
         "guard must be callable", "a", "go"),
        ([State("a", on=[On("go", STOP, action=42)])], "a", {},  # type: ignore[arg-type]
         "action must be callable", "a", "go"),
        ([State("a", on=[On("go", STOP)], enter="hi")], "a", {},  # type: ignore[arg-type]
         "enter must be callable", "a", None),
        ([State("a", on=[On("go", STOP)]), State("b", final=True, on=[On("x", "a")])], "a",
         {}, "final state", "b", None),
        ([State("a", on=[On("", STOP)])], "a", {}, "event name must be a non-empty str",
         "a", None),
        ([State("a", on=[On("go", 3)])], "a", {}, "target must be a state name",  # type: ignore[arg-type]
         "a", "go"),
        (ok_states(), "a", {"any_state": [On("exit", "nope")]}, "target 'nope'", None, "exit"),
        (ok_states(), "a", {"classify": "text"}, "classify must be callable", None, None),
        (ok_states(), "a", {"queue_limit": 0}, "queue_limit must be an int >= 1", None, None),
        ([], "a", {}, "at least one state", None, None),
        (["a"], "a", {}, "must be State objects", None, None),
    ],
)
def test_bad_specs_raise_naming_the_fault(
    states: list[Any], initial: str, kw: dict[str, Any], fragment: str,
    state: str | None, event: str | None,
) -> None:
    with pytest.raises(SpecError) as info:
        make(states, initial, **kw)
    err = info.value
    assert fragment in str(err)
    assert err.spec == "t"
    assert err.state == state
    assert err.event == event
    if state is not None:
        assert f"state {state!r}" in str(err)


def test_spec_name_must_be_a_string() -> None:
    with pytest.raises(SpecError, match="name must be a non-empty str"):
        Spec(name="", initial="a", states=ok_states())


def test_any_state_exit_counts_as_a_way_out() -> None:
    # "a" only keeps, but /exit works everywhere, so the user is never stuck.
    spec = make([State("a", on=[On("message", KEEP)])], any_state=[On("exit", STOP)])
    assert spec.lookup("a", "exit")[0].target is STOP


def test_spec_is_frozen() -> None:
    spec = make(ok_states())
    with pytest.raises(AttributeError):
        spec.initial = "b"  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "name"), [
    ("/hint", "hint"), ("/Give up now", "give"), ("hello", "message"), ("/", "message"),
    ("", "message"), ("/ x", "message"),
])
def test_default_classifier(raw: str, name: str) -> None:
    assert classify_text(raw) == name


@pytest.mark.parametrize("garbage", [None, 42, b"/hint", object()])
def test_default_classifier_rejects_garbage_by_type(garbage: object) -> None:
    with pytest.raises(EventError, match=type(garbage).__name__):
        classify_text(garbage)
