"""BACK: return to the previous state with the data as it was at that state's entry
(bounded snapshots in the session's data, so stores persist them; timeouts restart as on
entry; from the first state the spec's declared answer)."""

from __future__ import annotations

from typing import Any

import pytest
from diagram_helpers import expected_edges, parse_dot, parse_mermaid
from hypothesis import settings

from convo_fsm import (
    BACK,
    KEEP,
    STOP,
    Context,
    Engine,
    On,
    Spec,
    SpecError,
    State,
    Timeout,
    VirtualClock,
)
from convo_fsm.diagram import render
from convo_fsm.spec import BACK_KEY
from convo_fsm.storage import MemoryStore
from convo_fsm.testing import ConversationTester
from convo_fsm.testing.hypothesis import conversation_machine, specs


def put(key: str) -> Any:
    def action(ctx: Context) -> None:
        ctx.data[key] = ctx.text
    action.__name__ = f"put_{key}"
    return action


def ask(what: str) -> Any:
    def enter(ctx: Context) -> None:
        ctx.data["asked"] = ctx.data.get("asked", 0) + 1
        ctx.reply(f"{what}?")
    enter.__name__ = f"ask_{what}"
    return enter


TRIP = Spec(
    name="trip",
    initial="where",
    states=[
        State("where", enter=ask("where"), on=[On("message", "when", action=put("where"))]),
        State("when", enter=ask("when"),
              on=[On("message", "who", action=put("when")),
                  On("note", KEEP, action=put("note"))],
              timeout=Timeout(30, STOP, action=lambda ctx: ctx.reply("too slow"))),
        State("who", enter=ask("who"), on=[On("message", "done", action=put("who"))]),
        State("done", final=True),
    ],
    any_state=[On("back", BACK)],
    back_limit=3,
    nothing_back="Nothing before this.",
)


async def test_back_returns_to_the_previous_state_with_its_entry_data() -> None:
    t = ConversationTester(TRIP)
    assert await t.start("ann") == ["where?"]
    assert await t.say("ann", "Rome") == ["when?"]
    await t.say("ann", "/note")  # a KEEP in `when` changes data: not an entry
    assert t.data("ann")["note"] == "/note"
    assert await t.say("ann", "May") == ["who?"]
    # Back in `when`, with its data as it was once `when` was entered (Rome, asked twice; no
    # May, no note), then entered as usual: its enter action runs again (asked: 3).
    assert await t.say("ann", "/back") == ["when?"]
    data = t.data("ann")
    assert t.state("ann") == "when"
    assert {k: v for k, v in data.items() if k != BACK_KEY} == {"where": "Rome", "asked": 3}
    assert await t.say("ann", "/back") == ["where?"]
    assert {k: v for k, v in t.data("ann").items() if k != BACK_KEY} == {"asked": 2}
    assert await t.say("ann", "/back") == ["Nothing before this."]
    assert t.state("ann") == "where"
    await t.say("ann", "Oslo")
    await t.say("ann", "June")
    await t.say("ann", "Bo")
    assert t.ended("ann").session.data["where"] == "Oslo"  # type: ignore[union-attr]


async def test_back_restarts_the_timeout_as_on_entry() -> None:
    t = ConversationTester(TRIP)
    await t.start("ann")
    await t.say("ann", "Rome")
    await t.advance(20)
    await t.say("ann", "May")
    await t.advance(20)
    await t.say("ann", "/back")  # into `when` again: 30 s from now
    assert t.session("ann").deadline == 70  # type: ignore[union-attr]
    assert await t.advance(29) == []
    assert await t.advance(1) == ["too slow"]


async def test_snapshots_are_bounded_and_back_never_goes_past_them() -> None:
    loop = Spec(name="loop", initial="a", states=[
        State("a", on=[On("message", "b", action=put("a"))]),
        State("b", on=[On("message", "a", action=put("b"))]),
    ], any_state=[On("back", BACK), On("quit", STOP)], back_limit=2)
    t = ConversationTester(loop)
    await t.start("ann")
    for word in "123456":
        await t.say("ann", word)
    assert len(t.data("ann")[BACK_KEY]) == 2
    await t.say("ann", "/back")
    assert await t.say("ann", "/back") == ["There is nothing to go back to."]


async def test_back_state_survives_a_restart() -> None:
    store = MemoryStore()
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(TRIP, "k")
    await engine.deliver("k", "Rome")
    await engine.deliver("k", "May")
    await engine.close()
    engine2 = Engine(clock=VirtualClock(), store=store)
    await engine2.restore([TRIP])
    engine2.outbox.clear()
    assert await engine2.deliver("k", "/back")
    session = engine2.session("k")
    assert session is not None and session.state == "when"
    assert "when" not in session.data and session.data["where"] == "Rome"
    assert [r.text for r in engine2.outbox] == ["when?"]
    await engine2.close()


def test_a_timeout_cannot_go_back_and_limits_are_checked() -> None:
    with pytest.raises(SpecError, match="a timeout cannot go BACK") as caught:
        Spec(name="x", initial="a", states=[State("a", timeout=Timeout(5, BACK))])
    assert (caught.value.state, caught.value.event) == ("a", "timeout")
    with pytest.raises(SpecError, match="back_limit must be an int >= 1"):
        Spec(name="x", initial="a", states=[State("a", on=[On("b", BACK)])], back_limit=0)
    # BACK is a way out: a state whose only transition is BACK is valid.
    assert Spec(name="x", initial="a", states=[State("a", on=[On("b", BACK)])]).uses_back
    assert not TRIP.by_name["where"].final and not Spec(
        name="y", initial="a", states=[State("a", on=[On("b", STOP)])]).uses_back


def test_back_edges_are_drawn_as_labelled_loops() -> None:
    expected = expected_edges(TRIP)
    assert expected[("<any state>", "<any state>", False, "back (back)")] == 1
    for parse, fmt in ((parse_dot, "dot"), (parse_mermaid, "mermaid")):
        assert parse(render(TRIP, fmt)).edges() == expected, fmt


TestTripWithBack = conversation_machine(TRIP, texts=("/back", "/note", "x")).TestCase
TestTripWithBack.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
TestRandomSpecsWithBack = conversation_machine(specs(back=True, max_states=4)).TestCase
TestRandomSpecsWithBack.settings = settings(max_examples=40, stateful_step_count=30,
                                            deadline=None)
