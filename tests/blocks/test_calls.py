"""Sub-conversations (`State(call=Call(child, on_end=...))`): the child runs for the same key,
events go to the innermost level first, its ending picks the parent's transition; parent
timeouts paused or running; any-state handlers of parent and child; unwinding; nesting and
its limit; a form as the child; persisted by the stores (a restart mid-child resumes it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from diagram_helpers import expected_details, expected_edges, parse_dot, parse_mermaid
from hypothesis import settings

from convo_fsm import (
    CALL_DEPTH_LIMIT,
    KEEP,
    STOP,
    Call,
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
from convo_fsm.forms import Slot, form, integer
from convo_fsm.step import CALLS_KEY
from convo_fsm.storage import MemoryStore, open_store
from convo_fsm.testing import ConversationTester
from convo_fsm.testing.hypothesis import conversation_machine


def say(text: str) -> Any:
    def action(ctx: Context) -> None:
        ctx.reply(text.format(**{k: v for k, v in ctx.data.items() if isinstance(k, str)}))
    action.__name__ = "say"
    return action


ADDRESS = form("address", [Slot("street", "Street?"), Slot("zip", "Zip?", integer(1000, 99999))],
               confirm=False, done="", cancelled="")


def shop(timeout: str = "paused", unwind: tuple[str, ...] = (), after: float = 30) -> Spec:
    return Spec(
        name="shop",
        initial="menu",
        states=[
            State("menu", enter=say("menu"), on=[On("order", "address")]),
            State("address",
                  call=Call(ADDRESS, on_end={"done": "confirm", "cancelled": "menu"},
                            data_key="addr", timeout=timeout, unwind=unwind),
                  on=[On("menu", "menu"), On("help", KEEP, action=say("shop help"))],
                  timeout=Timeout(after, "menu", action=say("shop timed out"))),
            State("confirm", enter=say("ship to {addr}?"), on=[On("message", STOP)]),
        ],
        any_state=[On("quit", STOP, action=say("bye")), On("cancel", "menu")],
    )


SHOP = shop()


async def test_a_form_as_child_fills_the_parents_data_key_and_its_ending_picks_the_target(
        ) -> None:
    t = ConversationTester(SHOP)
    assert await t.start("ann") == ["menu"]
    assert await t.say("ann", "/order") == ["Street?"]  # the child starts on entry
    assert t.state("ann") == "address"
    assert await t.say("ann", "Main St") == ["Zip?"]  # the child's table, the child's data
    assert await t.say("ann", "12") == [
        "12 is out of range: send a number from 1000 to 99999. Zip?"]
    assert await t.say("ann", "back") == ["Street?"]  # the child's own words
    await t.say("ann", "Side St")
    assert await t.say("ann", "12345") == ["ship to {'street': 'Side St', 'zip': 12345}?"]
    assert t.state("ann") == "confirm" and CALLS_KEY not in t.data("ann")
    # The child's own cancel wins (its any-state handler): it ends `cancelled` -> menu.
    await t.start("bob")
    await t.say("bob", "/order")
    assert await t.say("bob", "cancel") == ["menu"]
    assert t.state("bob") == "menu"


async def test_an_event_the_child_has_no_transition_for_goes_to_the_parent() -> None:
    child = Spec(name="pick", initial="ask",
                 states=[State("ask", enter=say("pick a or b"),
                               on=[On("a", "got"), On("b", "got")]),
                         State("got", final=True)])
    parent = Spec(name="p", initial="calling", states=[
        State("calling", call=Call(child, on_end={"got": "done"}),
              on=[On("help", KEEP, action=say("parent help")), On("leave", "done")]),
        State("done", final=True, enter=say("done"))])
    t = ConversationTester(parent)
    assert await t.start("ann") == ["pick a or b"]
    assert await t.say("ann", "/help") == ["parent help"]  # the parent's KEEP: child stays
    assert t.data("ann")[CALLS_KEY][0]["state"] == "ask"
    said = await t.say("ann", "hello")  # nobody has a transition: handed back
    assert said == [] and not said.consumed
    assert await t.say("ann", "/leave") == ["done"]  # the parent leaves: the child ends
    assert t.state("ann") is None


async def test_unwind_sends_the_event_to_the_calling_state_past_the_childs_handler() -> None:
    t = ConversationTester(shop(unwind=("cancel",)))
    await t.start("ann")
    await t.say("ann", "/order")
    await t.say("ann", "Main St")
    # cancel is the parent's now: its any-state `cancel -> menu`, the form never sees it.
    assert await t.say("ann", "/cancel") == ["menu"]
    assert t.state("ann") == "menu" and "addr" not in t.data("ann")


async def test_a_paused_parent_timeout_does_not_run_while_the_child_does() -> None:
    t = ConversationTester(SHOP)
    await t.start("ann")
    await t.say("ann", "/order")
    assert t.session("ann").deadline is None  # type: ignore[union-attr]
    assert await t.advance(10_000) == []
    assert t.state("ann") == "address"


async def test_a_running_parent_timeout_ends_the_child_and_applies() -> None:
    t = ConversationTester(shop(timeout="running", after=30))
    await t.start("ann")
    await t.say("ann", "/order")
    assert t.session("ann").deadline == 30  # type: ignore[union-attr]
    await t.advance(20)
    await t.say("ann", "Main St")  # the child's step does not restart the parent's clock
    assert t.session("ann").deadline == 30  # type: ignore[union-attr]
    assert await t.advance(10) == ["shop timed out", "menu"]
    assert t.state("ann") == "menu" and CALLS_KEY not in t.data("ann")


async def test_child_timeouts_warnings_and_unmapped_endings() -> None:
    child = Spec(name="quick", initial="q", states=[
        State("q", on=[On("message", "ok")],
              timeout=Timeout(10, STOP, action=say("child late"), warn_before=4,
                              warn=say("child warn"))),
        State("ok", final=True)])
    mapped = Spec(name="m", initial="c", states=[
        State("c", call=Call(child, on_end={"ok": "fine", "timeout": "late"})),
        State("fine", final=True), State("late", final=True, enter=say("parent: late"))])
    t = ConversationTester(mapped)
    await t.start("ann")
    assert await t.advance(6) == ["child warn"]
    assert await t.advance(4) == ["child late", "parent: late"]
    assert t.ended("ann").reason == "final"  # type: ignore[union-attr]
    unmapped = Spec(name="u", initial="c", states=[
        State("c", call=Call(child, on_end={"ok": "fine"})), State("fine", final=True)])
    t = ConversationTester(unmapped)
    await t.start("ann")
    assert await t.advance(10) == ["child warn", "child late"]
    ended = t.ended("ann")
    assert ended is not None and ended.reason == "timeout"  # the parent ends the same way


async def test_nested_calls_three_deep_end_from_the_inside_out() -> None:
    inner = Spec(name="inner", initial="i", states=[
        State("i", enter=say("inner"), on=[On("message", "end")]), State("end", final=True)])
    middle = Spec(name="middle", initial="m", states=[
        State("m", call=Call(inner, on_end={"end": "after"}, data_key="in")),
        State("after", enter=say("middle after"), on=[On("message", "end")]),
        State("end", final=True)])
    outer = Spec(name="outer", initial="o", states=[
        State("o", call=Call(middle, on_end={"end": "z"})),
        State("z", final=True, enter=say("outer done"))])
    t = ConversationTester(outer)
    assert await t.start("ann") == ["inner"]
    assert len(t.data("ann")[CALLS_KEY]) == 2
    assert await t.say("ann", "x") == ["middle after"]
    assert len(t.data("ann")[CALLS_KEY]) == 1
    assert await t.say("ann", "y") == ["outer done"]
    assert t.ended("ann").session.data == {"in": {}}  # type: ignore[union-attr]


def _chain(depth: int) -> Spec:
    spec = Spec(name="leaf", initial="a", states=[State("a", on=[On("x", STOP)])])
    for i in range(depth):
        spec = Spec(name=f"level{i}", initial="c",
                    states=[State("c", call=Call(spec, on_end={"*": STOP}))])
    return spec


def test_the_nesting_depth_is_limited() -> None:
    assert _chain(CALL_DEPTH_LIMIT).calls
    with pytest.raises(SpecError, match=f"nest {CALL_DEPTH_LIMIT + 1} deep"):
        _chain(CALL_DEPTH_LIMIT + 1)


@pytest.mark.parametrize(("call", "message"), [
    (Call(ADDRESS, on_end={"finished": STOP}), "on_end 'finished' is not an ending"),
    (Call(ADDRESS, on_end={"done": "nowhere", "cancelled": STOP}),
     "on_end 'done' goes to 'nowhere'"),
    (Call(ADDRESS, on_end={"done": KEEP, "cancelled": STOP}), "on_end 'done' goes to KEEP"),
    (Call(ADDRESS, on_end={"done": STOP}), "no target for 'address''s final state"),
    (Call(ADDRESS, on_end={}), "call on_end must map"),
    (Call(ADDRESS, on_end={"*": STOP}, timeout="later"), "call timeout must be 'paused'"),
    (Call(ADDRESS, on_end={"*": STOP}, data_key=""), "call data_key must be a non-empty str"),
    (Call("address", on_end={"*": STOP}), "call spec must be a Spec"),  # type: ignore[arg-type]
])
def test_malformed_calls_are_spec_errors_naming_state_and_call(call: Call, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        Spec(name="bad", initial="c", states=[State("c", call=call, on=[On("x", STOP)])])
    assert (caught.value.state, caught.value.event) == ("c", "call")


def test_a_childs_guards_must_be_sync_and_a_final_state_cannot_call() -> None:
    async def later(ctx: Context) -> bool:
        await asyncio.sleep(0)
        return True

    child = Spec(name="ch", initial="a", states=[State("a", on=[On("x", STOP, guard=later)])])
    with pytest.raises(SpecError, match="guard 'later' of ch's state 'a' is async"):
        Spec(name="bad", initial="c", states=[State("c", call=Call(child, on_end={"*": STOP}))])
    with pytest.raises(SpecError, match="a final state cannot call"):
        Spec(name="bad", initial="c", states=[
            State("c", final=True, call=Call(ADDRESS, on_end={"*": STOP}))])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_restart_mid_child_resumes_it_and_its_timers(kind: str, tmp_path: Any) -> None:
    child = Spec(name="slow", initial="q", states=[
        State("q", enter=say("question"), on=[On("message", "ok", action=say("noted"))],
              timeout=Timeout(30, STOP, action=say("child late"))),
        State("ok", final=True)])
    parent = Spec(name="restartable", initial="c", states=[
        State("c", call=Call(child, on_end={"ok": "end", "timeout": "end"})),
        State("end", final=True, enter=say("parent end"))])
    store = MemoryStore() if kind == "memory" else open_store(str(tmp_path / "s.db"))
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(parent, "k")
    await engine.close()
    clock = VirtualClock(10)  # back before the child's deadline
    engine2 = Engine(clock=clock, store=store)
    await engine2.restore([parent])
    session = engine2.session("k")
    assert session is not None and session.deadline == 30
    assert session.data[CALLS_KEY][0]["state"] == "q"
    engine2.outbox.clear()
    await clock.advance(20)
    assert [r.text for r in engine2.outbox] == ["child late", "parent end"]
    # And an event after a restart goes to the child.
    engine3 = Engine(clock=VirtualClock(), store=store)
    await engine3.start(parent, "j")
    await engine3.close()
    engine4 = Engine(clock=VirtualClock(), store=store)
    await engine4.restore([parent])
    engine4.outbox.clear()
    assert await engine4.deliver("j", "hello")
    assert [r.text for r in engine4.outbox] == ["noted", "parent end"]
    await engine4.close()


async def test_force_into_a_calling_state_starts_its_child() -> None:
    t = ConversationTester(SHOP)
    await t.start("ann")
    t.force("ann", "address")
    assert t.data("ann")[CALLS_KEY][0]["state"] == "street"
    assert await t.say("ann", "Elm") == ["Zip?"]


def test_calls_are_drawn_with_each_ending_as_an_edge() -> None:
    expected = expected_edges(SHOP)
    assert expected[("address", "confirm", False, "address ends: done")] == 1
    assert expected[("address", "menu", False, "address ends: cancelled")] == 1
    assert expected_details(SHOP.by_name["address"]) == ["calls: address (paused timeout)"]
    for parse, fmt in ((parse_dot, "dot"), (parse_mermaid, "mermaid")):
        drawn = parse(render(SHOP, fmt))
        assert drawn.edges() == expected, fmt
        ids = {name: nid for nid, name in drawn.names.items()}
        assert drawn.details[ids["address"]] == ["calls: address (paused timeout)"]


TestShopMachine = conversation_machine(
    shop(timeout="running", unwind=("quit",)),
    texts=("/order", "Main St", "12345", "12", "back", "cancel", "/menu", "/help", "/quit",
           "ok")).TestCase
TestShopMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)


def test_the_short_path_and_the_general_path_agree() -> None:
    import copy

    from convo_fsm import Input, Result, Run, new_session, step
    from convo_fsm.step import _call_input, _fast_child, _levels

    def noop(ctx: Context) -> None:
        ctx.data["n"] = ctx.data.get("n", 0) + 1

    def written(result: Result) -> Result:  # run the step's stack write, as the engine would
        ctx = Context(result.session, None, "x", 0.0, lambda reply: None)
        for e in result.effects:
            if type(e) is Run and e.action.__name__ == "call_stack":
                e.action(ctx)
        return result

    child = Spec(name="plain", initial="a", states=[
        State("a", on=[On("message", KEEP, action=noop), On("go", "b", action=noop)],
              timeout=Timeout(60, STOP, warn_before=10, warn=noop)),
        State("b", on=[On("message", "a")], timeout=Timeout(5, STOP))])
    for timeout in ("paused", "running"):
        parent = Spec(name="p", initial="c", states=[
            State("c", call=Call(child, on_end={"*": STOP}, timeout=timeout),
                  timeout=Timeout(30, STOP))])
        current = written(new_session(parent, "k", 0.0))
        for text, now in (("hi", 1.0), ("/go", 2.0), ("hi", 3.0)):
            session = current.session
            twin = session._replace(data=copy.deepcopy(session.data))
            event = Input(parent.classify(text), text)
            general = _call_input(parent, twin, _levels(parent, twin), event, now)
            fast = _fast_child(parent, session._replace(data=copy.deepcopy(session.data)),
                               event, now)
            assert fast is not None, (timeout, text)
            assert (fast.session.deadline, fast.session.warn_at) == (
                general.session.deadline, general.session.warn_at), (timeout, text)
            assert fast.effects[0] == general.effects[0]
            runs = [e for e in general.effects[1:] if e.action.__name__ != "call_stack"]
            assert len(fast.effects) - 1 == len(runs)
            current = written(step(parent, session, event, now))
            assert current.session.data["__calls__"][0]["state"] == (
                "b" if text == "/go" else "a")


def test_readme_shop_example_runs_as_written_and_prints_what_readme_shows() -> None:
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Back, guarded timeouts and sub-conversations\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    output = re.search(r"```text\n(.*?)```", section, re.S)
    assert code is not None and output is not None
    namespace: dict[str, Any] = {"__name__": "readme_shop"}
    exec(compile(code.group(1), "README.md (sub-conversations)", "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(namespace["demo"]())
    assert out.getvalue() == output.group(1)
    assert "Still there?" in out.getvalue() and out.getvalue().endswith("Ordered.\n")
