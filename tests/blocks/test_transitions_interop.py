"""`convo_fsm.interop.transitions`: a Spec from a `transitions` configuration (with its Timeout
state extension), and a Spec exported as one (run by a real `transitions.Machine`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine
from transitions.extensions.states import Timeout as TimeoutState
from transitions.extensions.states import add_state_features

import games
from convo_fsm import KEEP, STOP, Context, Message, SpecError
from convo_fsm.interop.transitions import STOPPED, TIMEOUT, from_transitions, to_transitions
from convo_fsm.step import End, Input, TimerFired, new_session, step
from convo_fsm.testing import ConversationTester
from convo_fsm.testing.hypothesis import specs


def is_42(ctx: Context) -> bool:
    return ctx.text.strip() == "42"


def right(ctx: Context) -> None:
    ctx.reply("Right!")


def wrong(ctx: Context) -> None:
    ctx.data["tries"] = ctx.data.get("tries", 0) + 1
    ctx.reply("No, try again.")


def tried(ctx: Context) -> bool:
    return bool(ctx.data.get("tries"))


def remind(ctx: Context) -> None:
    ctx.reply("Still there?")


def bye(ctx: Context) -> None:
    ctx.reply("Bye.")


CONFIG: dict[str, Any] = {
    "initial": "asking",
    "states": [
        {"name": "asking", "timeout": 30, "on_timeout": "timed_out"},
        {"name": "reminded", "timeout": 30, "on_timeout": "to_gone"},
        "gone",
        {"name": "done", "final": True},
    ],
    "transitions": [
        {"trigger": "message", "source": "asking", "dest": "done", "conditions": "is_42",
         "after": "right"},
        ["message", "asking", None, None, None, None, "wrong"],  # internal: KEEP
        {"trigger": "timed_out", "source": "asking", "dest": "reminded", "conditions": "tried",
         "after": "remind"},
        {"trigger": "timed_out", "source": "asking", "dest": STOPPED},
        {"trigger": "message", "source": "reminded", "dest": "done", "conditions": [is_42]},
        {"trigger": "exit", "source": "*", "dest": STOPPED, "after": bye},
    ],
}
REGISTRY = {"is_42": is_42, "right": right, "wrong": wrong, "tried": tried, "remind": remind}


async def test_a_transitions_configuration_with_timeouts_becomes_a_spec() -> None:
    spec = from_transitions(CONFIG, name="quiz", registry=REGISTRY)
    asking = spec.by_name["asking"]
    assert [t.target for t in asking.on] == ["done", KEEP]
    assert asking.timeout is not None and asking.timeout.after == 30
    assert [b.target for b in asking.timeout.branches] == ["reminded", STOP]  # guarded, then not
    reminded = spec.by_name["reminded"].timeout
    assert reminded is not None and reminded.target == "gone"  # on_timeout="to_gone"
    assert spec.by_name["done"].final and [t.event for t in spec.any_state] == ["exit"]
    t = ConversationTester(spec)
    await t.start("ann")
    assert await t.say("ann", "41") == ["No, try again."]
    assert await t.advance(30) == ["Still there?"]  # tried: the guarded branch
    assert await t.say("ann", "42") == []
    assert t.state("ann") is None
    await t.start("bob")
    assert await t.advance(30) == []  # never tried: the timeout's last branch, STOP
    assert t.ended("bob").reason == "timeout"  # type: ignore[union-attr]
    await t.start("cy")
    assert await t.say("cy", "/exit") == ["Bye."]


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["transitions"][0].update(conditions="nope"), "unknown condition 'nope'"),
    (lambda c: c["transitions"].append({"trigger": "x", "source": "nowhere", "dest": None}),
     "from undeclared state 'nowhere'"),
    (lambda c: c["states"].append("asking"), "duplicate state"),
    (lambda c: c["states"][1].update(on_timeout="ring"), "no transition has that trigger"),
    (lambda c: c["transitions"].pop(3), "the last transition of a timeout must have no"),
    (lambda c: c["transitions"][0].update(dest="elsewhere"), "'elsewhere' is not a declared"),
])
def test_a_bad_configuration_is_a_spec_error(change: Any, message: str) -> None:
    import copy

    config = copy.deepcopy(CONFIG)
    change(config)
    with pytest.raises(SpecError, match=message):
        from_transitions(config, name="quiz", registry=REGISTRY)


def test_an_exported_spec_runs_in_transitions_with_its_timeout_extension() -> None:
    spec = games.load("guess-number")
    config = to_transitions(spec)
    guessing = next(s for s in config["states"] if isinstance(s, dict)
                    and s["name"] == "guessing")
    assert guessing == {"name": "guessing", "timeout": 60.0, "on_timeout": TIMEOUT}
    timed = [t for t in config["transitions"] if t["trigger"] == TIMEOUT]
    assert timed == [{"trigger": TIMEOUT, "source": "guessing", "dest": STOPPED,
                      "after": [spec.by_name["guessing"].timeout.action]}]  # type: ignore[union-attr]
    machine_cls = add_state_features(TimeoutState)(Machine)
    machine = machine_cls(**{**config, "initial": "won"})  # a state without a timer thread
    assert machine.get_state("guessing").timeout == 60.0
    plain = Machine(**to_transitions(spec, timeouts=False))
    assert plain.state == "guessing"
    message = Message("/help", sender="u")
    session = new_session(spec, "k", 0.0, {"low": 1, "high": 9, "attempts": 3, "seed": 1,
                                           "secret": 5, "left": 3, "guesses": []}).session
    ctx = Context(session, message, "help", 0.0, lambda reply: None)
    plain.trigger("help", ctx)  # its `after` is the game's own show_help, given the Context
    assert plain.state == "guessing"
    plain.trigger("exit", ctx)
    assert plain.state == STOPPED


def test_a_spec_with_sub_conversations_cannot_be_exported() -> None:
    from convo_fsm import Call, On, Spec, State
    child = Spec(name="c", initial="a", states=[State("a", on=[On("x", STOP)])])
    spec = Spec(name="p", initial="s", states=[State("s", call=Call(child, on_end={"*": STOP}))])
    with pytest.raises(SpecError, match="sub-conversations"):
        to_transitions(spec)


events = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "next", "help", "exit", "zzz",
                                             TIMEOUT]),
                            st.sampled_from(["", "x", "12", "hello"])), max_size=20)


@given(spec=specs(actions=False, policies=False, back=False, calls=False), seq=events)
@settings(max_examples=60, deadline=None)
def test_export_then_import_gives_a_spec_that_steps_the_same(spec: Any, seq: Any) -> None:
    again = from_transitions(to_transitions(spec), name=spec.name)
    a = new_session(spec, "k", 0.0).session
    b = new_session(again, "k", 0.0).session
    now = 0.0
    for name, text in seq:
        now += 1
        if name == TIMEOUT:
            if spec.by_name[a.state].timeout is None:
                continue
            ra, rb = step(spec, a, TimerFired(), now), step(again, b, TimerFired(), now)
        else:
            event = Message(text, sender="u")
            ra = step(spec, a, Input(name, event), now)
            rb = step(again, b, Input(name, event), now)
        ended_a = any(isinstance(e, End) for e in ra.effects)
        ended_b = any(isinstance(e, End) for e in rb.effects)
        assert (ra.handled, ended_a) == (rb.handled, ended_b), (name, text)
        a, b = ra.session, rb.session
        if ended_a:
            break
        # (not the deadlines: transitions has no KEEP that leaves the timeout running, so an
        # exported `reset_timeout=False` comes back as a KEEP that restarts it)
        assert a.state == b.state, (name, text)
