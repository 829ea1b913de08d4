"""What a diagram shows, case by case: names of callables, details, the any-state node,
merged self-loops, escaping, live state, errors."""

from __future__ import annotations

import functools

import pytest
from diagram_helpers import END, parse_dot, parse_mermaid

from convo_fsm import KEEP, STOP, Engine, Message, On, Spec, State, Timeout, VirtualClock
from convo_fsm.diagram import (
    DiagramError,
    LiveState,
    callable_name,
    graph,
    one_line,
    render,
    render_live,
    seconds,
)


def is_42(ctx: object) -> bool:
    return getattr(ctx, "text", "").strip() == "42"


def ask(ctx: object) -> None:
    pass


def tidy(ctx: object) -> None:
    pass


QUIZ = Spec(
    name="quiz",
    initial="asking",
    states=[
        State("asking", enter=ask, exit=lambda ctx: None,
              on=[On("message", "done", guard=is_42),
                  On("message", KEEP, guard=lambda ctx: True),
                  On("message", KEEP),
                  On("again", "asking")],
              timeout=Timeout(30, "reminded", warn_before=10, warn=ask)),
        State("reminded", on=[On("message", "done", guard=is_42), On("exit", KEEP)],
              timeout=Timeout(60, STOP), exit=tidy),
        State("done", final=True),
    ],
    any_state=[On("exit", STOP), On("help", KEEP)],
)


@pytest.mark.parametrize("parse, fmt", [(parse_dot, "dot"), (parse_mermaid, "mermaid")])
def test_quiz_as_drawn(parse, fmt) -> None:  # type: ignore[no-untyped-def]
    drawn = parse(render(QUIZ, fmt))
    ids = {name: nid for nid, name in drawn.names.items()}
    assert drawn.details[ids["asking"]] == ["enter: ask", "exit: lambda", "warn at 20s"]
    assert drawn.details[ids["reminded"]] == ["exit: tidy"]
    assert drawn.details[ids["done"]] == []
    assert drawn.initial == "asking"
    assert {drawn.names[n] for n in drawn.finals} == {"done"}
    # The three keeps and the re-entry of "asking" are one loop, in priority order.
    loops = [labels for s, t, _, labels in drawn.raw_edges if s == t == ids["asking"]]
    assert loops == [["message [lambda]", "message", "again (re-enter)"]]
    edges = drawn.edges()
    assert edges[("asking", "reminded", True, "30s")] == 1
    assert edges[("reminded", END, True, "60s")] == 1
    # Any-state transitions: once, from one node; "reminded" handles exit itself.
    assert edges[("<any state>", END, False, "exit (not in reminded)")] == 1
    assert edges[("<any state>", "<any state>", False, "help")] == 1
    assert sum(1 for s, *_ in edges if s == "<any state>") == 2


def test_callable_names() -> None:
    assert callable_name(is_42) == "is_42"
    assert callable_name(lambda ctx: None) == "lambda"
    assert callable_name(functools.partial(functools.partial(ask), 1)) == "ask"

    class Checker:
        def __call__(self, ctx: object) -> bool:
            return True

    assert callable_name(Checker()) == "Checker"


def test_seconds_format() -> None:
    assert [seconds(x) for x in (60, 60.0, 1.5, 0.3 - 0.1, 3600, 0.0005)] == [
        "60s", "60s", "1.5s", "0.2s", "3600s", "0.001s"]


def test_names_with_line_breaks_and_markup_stay_on_one_line() -> None:
    weird = 'a\nb"<c>&#|`\\N'
    spec = Spec(name="w\n", initial=weird,
                states=[State(weird, on=[On("go\r", STOP, guard=is_42)])])
    assert one_line(weird) == 'a b"<c>&#|`\\N'
    for parse, fmt in ((parse_dot, "dot"), (parse_mermaid, "mermaid")):
        text = render(spec, fmt)
        drawn = parse(text)
        assert list(drawn.names.values()) == ['a b"<c>&#|`\\N']
        assert list(drawn.edges()) == [('a b"<c>&#|`\\N', END, False, "go  [is_42]")]
        # Nothing of a name leaks out of its quotes: as many lines as with a plain name.
        plain = Spec(name="w", initial="x", states=[State("x", on=[On("go", STOP, guard=is_42)])])
        assert len(text.splitlines()) == len(render(plain, fmt).splitlines())


def test_live_state_highlighted_with_time_left() -> None:
    for parse, fmt in ((parse_dot, "dot"), (parse_mermaid, "mermaid")):
        drawn = parse(render(QUIZ, fmt, live=LiveState("reminded", 41.2)))
        assert [drawn.names[n] for n in drawn.highlighted] == ["reminded"]
        assert {drawn.names[n]: line for n, line in drawn.live_lines.items()} == {
            "reminded": "now here: 42s left"}
        # The rest of the diagram is the plain one.
        assert drawn.edges() == parse(render(QUIZ, fmt)).edges()
        no_timer = parse(render(QUIZ, fmt, live=LiveState("asking")))
        assert list(no_timer.live_lines.values()) == ["now here"]


def test_live_state_must_be_a_state_of_the_spec() -> None:
    with pytest.raises(ValueError, match="spec 'quiz' has no state 'nope'"):
        render(QUIZ, "mermaid", live=LiveState("nope"))


async def test_render_live_follows_the_session() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock)
    alice = Message("/quiz", sender="alice")
    key = engine.key("member", alice)
    await engine.start(QUIZ, key, event=alice)
    await clock.advance(12)
    drawn = parse_dot(render_live(engine, key, "dot"))
    assert {drawn.names[n]: line for n, line in drawn.live_lines.items()} == {
        "asking": "now here: 18s left"}
    await clock.advance(18)  # the timeout moves the session to "reminded"
    drawn = parse_mermaid(render_live(engine, key))
    assert [drawn.names[n] for n in drawn.highlighted] == ["reminded"]
    assert list(drawn.live_lines.values()) == ["now here: 60s left"]
    engine.stop(key)
    with pytest.raises(KeyError, match="no live session"):
        render_live(engine, key)
    await engine.close()


def test_bad_format_and_bad_spec() -> None:
    with pytest.raises(DiagramError, match="unknown diagram format 'png'"):
        render(QUIZ, "png")
    with pytest.raises(TypeError, match=r"needs a convo_fsm\.Spec, got str"):
        graph("quiz")  # type: ignore[arg-type]


def test_end_node_only_when_something_stops() -> None:
    spec = Spec(name="loop", initial="a",
                states=[State("a", on=[On("go", "b")]), State("b", final=True)])
    assert [n.kind for n in graph(spec).nodes] == ["start", "state", "state"]
    assert "    class start marker" in render(spec, "mermaid").splitlines()
    assert "stop" not in parse_dot(render(spec, "dot")).specials
