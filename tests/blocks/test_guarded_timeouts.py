"""Guarded timeouts: a `Timeout` with several targets chosen by guards (`when=[When(...)]`),
first passing guard wins, the timeout's own target and action the guard-less last branch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from diagram_helpers import expected_edges, parse_dot, parse_mermaid

from convo_fsm import (
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
    When,
)
from convo_fsm.diagram import render
from convo_fsm.storage import MemoryStore
from convo_fsm.testing import ConversationTester


def rich(ctx: Context) -> bool:
    return int(ctx.data.get("coins", 0)) >= 10


def some(ctx: Context) -> bool:
    return int(ctx.data.get("coins", 0)) >= 1


def earn(ctx: Context) -> None:
    ctx.data["coins"] = int(ctx.data.get("coins", 0)) + int(ctx.text)


def say(text: str) -> Any:
    def action(ctx: Context) -> None:
        ctx.reply(text)
    action.__name__ = text.replace(" ", "_")
    return action


SHOP = Spec(
    name="shop",
    initial="browsing",
    states=[
        State("browsing",
              on=[On("message", KEEP, action=earn, reset_timeout=False)],
              timeout=Timeout(30, STOP, action=say("nothing bought"),
                              when=[When("vip", guard=rich, action=say("to the vip room")),
                                    When(KEEP, guard=some, action=say("still browsing")),
                                    ])),
        State("vip", enter=say("welcome"), on=[On("leave", STOP)]),
    ],
)


async def test_the_first_passing_guard_wins_and_the_last_branch_has_none() -> None:
    t = ConversationTester(SHOP)
    await t.start("rich")
    await t.say("rich", "12")  # both guards pass: the first one wins
    await t.start("poor")
    await t.start("mid")
    await t.say("mid", "3")
    said = await t.advance(30)
    assert sorted(said) == sorted(["to the vip room", "welcome", "nothing bought",
                                   "still browsing"])
    assert t.state("rich") == "vip"
    assert t.state("poor") is None and t.ended("poor").reason == "timeout"  # type: ignore[union-attr]
    # A KEEP branch restarts the timeout as on entry: mid is asked again after 30 s more.
    assert t.state("mid") == "browsing" and t.session("mid").deadline == 60  # type: ignore[union-attr]
    await t.say("mid", "7")
    assert await t.advance(30) == ["to the vip room", "welcome"]


async def test_a_guard_is_read_when_the_timeout_falls_due_not_when_it_was_armed() -> None:
    t = ConversationTester(SHOP)
    await t.start("ann")
    await t.advance(29)
    await t.say("ann", "10")
    assert await t.advance(1) == ["to the vip room", "welcome"]


async def test_a_timeout_guard_that_raises_ends_only_its_session_as_an_error() -> None:
    def broken(ctx: Context) -> bool:
        raise KeyError("coins")

    spec = Spec(name="broken", initial="a", states=[
        State("a", on=[On("x", STOP)],
              timeout=Timeout(5, STOP, action=say("fallback"),
                              when=[When("b", guard=broken)])),
        State("b", final=True)])
    t = ConversationTester(spec)
    await t.start("ann")
    await t.start("bob")
    assert await t.advance(5) == []  # neither branch's action ran
    assert t.ended("ann").reason == "error"  # type: ignore[union-attr]
    assert [type(exc) for _, exc in t.errors] == [KeyError, KeyError]
    assert len(t.engine) == 0


async def test_a_restart_mid_state_takes_the_branch_its_restored_data_chooses() -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    await engine.start(SHOP, "k")
    assert await engine.deliver("k", "11")
    await engine.close()  # the process goes away; the store keeps the session
    clock2 = VirtualClock(100.0)  # ... and comes back after its deadline
    engine2 = Engine(clock=clock2, store=store)
    await engine2.restore([SHOP])
    await clock2.advance(0)
    session = engine2.session("k")
    assert session is not None and session.state == "vip"
    assert [r.text for r in engine2.outbox] == ["to the vip room", "welcome"]
    await engine2.close()


@pytest.mark.parametrize(("timeout", "message"), [
    (Timeout(5, STOP, when=[When("b")]),
     "timeout when\\[0\\] has no guard"),
    (Timeout(5, STOP, when=["b"]),  # type: ignore[list-item]
     "timeout when\\[0\\] must be a When"),
    (Timeout(5, STOP, when=[When("nowhere", guard=rich)]),
     "target 'nowhere' is not a declared state"),
    (Timeout(5, STOP, when=[When("b", guard="rich")]),  # type: ignore[arg-type]
     "timeout when\\[0\\] guard must be callable"),
    (Timeout(5, STOP, when=[When("b", guard=rich, action=3)]),  # type: ignore[arg-type]
     "timeout when\\[0\\] action must be callable"),
])
def test_malformed_branches_are_spec_errors_naming_state_and_timeout(
        timeout: Timeout, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        Spec(name="bad", initial="a", states=[State("a", on=[On("x", "b")], timeout=timeout),
                                               State("b", final=True)])
    assert (caught.value.state, caught.value.event) == ("a", "timeout")


def test_an_async_timeout_guard_is_refused_at_load() -> None:
    async def later(ctx: Context) -> bool:
        await asyncio.sleep(0)
        return True

    with pytest.raises(SpecError, match="guard later is async: a timeout chooses its branch at "
                                        "once"):
        Spec(name="bad", initial="a", states=[
            State("a", on=[On("x", STOP)], timeout=Timeout(5, STOP, when=[When(STOP, later)]))])


def test_a_branch_target_makes_a_state_reachable_and_gives_a_way_out() -> None:
    spec = Spec(name="reach", initial="a", states=[
        State("a", timeout=Timeout(5, KEEP, when=[When("b", guard=rich)])),
        State("b", final=True)])
    assert spec.by_name["b"].final
    with pytest.raises(SpecError, match="unreachable"):
        Spec(name="reach", initial="a", states=[
            State("a", timeout=Timeout(5, KEEP)), State("b", final=True)])


def test_each_branch_is_its_own_dashed_edge_in_dot_and_mermaid() -> None:
    expected = expected_edges(SHOP)
    assert expected[("browsing", "vip", True, "30s [rich]")] == 1
    assert expected[("browsing", "browsing", True, "30s [some]")] == 1
    assert expected[("browsing", "<end>", True, "30s")] == 1
    for parse, fmt in ((parse_dot, "dot"), (parse_mermaid, "mermaid")):
        assert parse(render(SHOP, fmt)).edges() == expected, fmt
