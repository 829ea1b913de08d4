"""Specs that know how to start (`Spec.start`): arguments parsed into the first data, the
session kind, clear errors; every generic tool starts any spec with no registry."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from diagram_helpers import parse_dot, parse_mermaid

import games
from convo_fsm import (
    KEEP,
    STOP,
    Message,
    On,
    Spec,
    SpecError,
    Start,
    StartArgs,
    StartError,
    State,
)
from convo_fsm.compat.astrbot import PluginHost, spec_command
from convo_fsm.compat.astrbot.api.star import Star
from convo_fsm.diagram import graph, render
from convo_fsm.testing import ConversationTester


def parse_count(args: StartArgs) -> dict[str, Any]:
    if len(args.words) > 1:
        raise ValueError(f"one number at most, got {args.text!r}")
    n = int(args.words[0]) if args.words else 3  # int('x') is a ValueError: refused too
    if n < 1:
        raise ValueError(f"the count must be >= 1, got {n}")
    return {"left": n, "who": args.sender, "seed": args.seed}


def say_left(ctx: Any) -> None:
    ctx.reply(f"{ctx.data['who']}: {ctx.data['left']} to go")


def countdown(start: Start | None, name: str = "countdown") -> Spec:
    return Spec(
        name=name, initial="counting",
        states=[State("counting", enter=say_left,
                      on=[On("message", KEEP, action=lambda ctx: ctx.data.update(
                          left=ctx.data["left"] - 1))]),
                ],
        any_state=[On("exit", STOP)],
        start=start)


COUNTDOWN = countdown(Start(parse_count, kind="member", usage="[COUNT]"))


def test_begin_parses_arguments_into_the_first_data() -> None:
    event = Message("/start 5", sender="ann")
    opening = COUNTDOWN.begin(event, seed=9)
    assert opening.data == {"left": 5, "who": "ann", "seed": 9}
    assert opening.kind == "member"
    # Explicit arguments win over the event's text; defaults apply without any.
    assert COUNTDOWN.begin(event, "2").data["left"] == 2
    assert COUNTDOWN.begin(Message("/start", sender="bo")).data == {
        "left": 3, "who": "bo", "seed": 0}
    # Only a /command has arguments: plain text starts with none.
    assert COUNTDOWN.begin(Message("hello 7", sender="bo")).data["left"] == 3


@pytest.mark.parametrize(("args", "problem"), [
    ("x", "invalid literal for int"),
    ("0", "the count must be >= 1, got 0"),
    ("1 2", "one number at most, got '1 2'"),
])
def test_bad_arguments_are_a_start_error_naming_spec_problem_and_usage(
        args: str, problem: str) -> None:
    with pytest.raises(StartError) as caught:
        COUNTDOWN.begin(Message("/start", sender="ann"), args)
    assert str(caught.value).startswith("Cannot start countdown: ")
    assert problem in caught.value.problem
    assert str(caught.value).endswith("(arguments: [COUNT])")
    assert isinstance(caught.value, ValueError)


def test_a_declared_start_without_parse_takes_no_arguments() -> None:
    spec = countdown(Start(kind="group"))
    assert spec.begin(Message("/start", sender="a", group="g")).data == {}
    assert spec.begin(Message("/start", sender="a")).kind == "group"
    with pytest.raises(StartError, match="it takes no arguments, got 'now'"):
        spec.begin(Message("/start now", sender="a"))


def test_a_spec_without_start_starts_empty_and_per_member_whatever_it_is_given() -> None:
    spec = countdown(None)
    assert spec.begin(Message("/start anything at all", sender="a")).data == {}
    assert spec.begin(None).kind == "member"


def test_group_only_refuses_a_private_chat() -> None:
    spec = countdown(Start(parse_count, kind="group", group_only=True, usage="[COUNT]"))
    with pytest.raises(StartError, match="it is a group game: start it in a group"):
        spec.begin(Message("/start", sender="a"))
    assert spec.begin(Message("/start", sender="a", group="g")).kind == "group"


def test_a_kind_function_chooses_per_start_and_must_choose_a_known_kind() -> None:
    spec = countdown(Start(kind=lambda a: "group" if "team" in a.words else "member"))
    with pytest.raises(StartError):  # no parse: "team" is an argument it does not take
        spec.begin(Message("/start team", sender="a"))
    chooser = countdown(Start(lambda a: {}, kind=lambda a: "group" if a.words else "member"))
    assert chooser.begin(Message("/start team", sender="a")).kind == "group"
    assert chooser.begin(Message("/start", sender="a")).kind == "member"
    bogus = countdown(Start(lambda a: {}, kind=lambda a: "everyone"))
    with pytest.raises(TypeError, match="start kind chose 'everyone'"):
        bogus.begin(Message("/start", sender="a"))


def test_parse_must_return_json_data() -> None:
    not_a_mapping = countdown(Start(lambda a: [1, 2]))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="start parse returned list, not a mapping"):
        not_a_mapping.begin(None)
    not_json = countdown(Start(lambda a: {"when": object()}))
    with pytest.raises(TypeError, match="start data is not JSON-serialisable"):
        not_json.begin(None)


@pytest.mark.parametrize(("start", "message"), [
    ("member", "start must be a Start, got 'member'"),
    (Start(kind="everyone"), "start kind must be one of member, group"),
    (Start(parse="not callable"), "start parse must be callable"),  # type: ignore[arg-type]
    (Start(usage=3), "start usage must be a str"),  # type: ignore[arg-type]
])
def test_a_malformed_start_is_a_spec_error_naming_the_start(start: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        countdown(start)
    assert caught.value.event == "start" and caught.value.spec == "countdown"


# -- the tools start any spec by itself ---------------------------------------------------------
async def test_tester_starts_a_game_from_its_spec_alone(caplog: pytest.LogCaptureFixture) -> None:
    # The report: this logged KeyError('seed') and returned nothing.
    caplog.set_level(logging.DEBUG)
    t = ConversationTester(games.load("guess-number"), seed=4)
    said = await t.start("alice", "/start 1-1000 10")
    assert said == ["I'm thinking of a number from 1 to 1000. You have 10 attempts and 60 s "
                    "per guess."]
    assert t.data("alice")["attempts"] == 10 and t.data("alice")["seed"] == 4
    assert t.errors == [] and "KeyError" not in caplog.text
    with pytest.raises(StartError, match="range '9-1' must have LOW < HIGH"):
        await t.start("bob", "/start 9-1")
    assert t.session("bob") is None


async def test_tester_keys_each_start_as_the_spec_chose() -> None:
    t = ConversationTester(games.load("idiom-chain"), seed=1)
    assert t.kind == "member"  # the spec chooses per start: no fixed kind
    await t.start("ann", "/start", group="g")
    assert t.key("ann", "g") == t.key("ann", "g", kind="group")
    assert t.session("bob", group="g") is None  # bob is not remembered as the group
    assert t.session("ann", group="g") is not None
    await t.start("cy", "/start solo", group="g")
    assert t.key("cy", "g") == t.key("cy", "g", kind="member")
    bomb = ConversationTester(games.load("number-bomb"))
    assert bomb.kind == "group"  # a fixed declared kind is the tester's default
    await bomb.start("ann", "/start 1-50", group="g")
    assert bomb.data("bob", group="g")["hi"] == 50  # everyone in g shares the game


class Commands(Star):
    count = spec_command("count", COUNTDOWN)
    team = spec_command("team", countdown(Start(parse_count, kind="group", usage="[COUNT]"),
                                                "team-countdown"))


async def test_spec_command_parses_the_command_arguments_and_answers_bad_ones() -> None:
    host = PluginHost()
    host.load(Commands)
    said = await host.send("/count 4", sender="ann", group="g")
    assert len(said) == 1 and said[0].endswith(": 4 to go")
    assert await host.send("/count 0", sender="bo", group="g") == [
        "Cannot start countdown: the count must be >= 1, got 0 (arguments: [COUNT])"]
    assert len(host.engine) == 1
    # The declared kind keys it: "group" is one session for the whole chat.
    await host.send("/team 2", sender="cy", group="h")
    keys = {info.key for info in host.engine.sessions()}
    assert len(keys) == 2 and any(key.endswith(":group:h") for key in keys), keys


def test_the_diagram_draws_the_declared_start_on_the_start_edge() -> None:
    edge = graph(COUNTDOWN).edges[0]
    assert (edge.kind, edge.label) == ("start", "start [COUNT] (member)")
    assert graph(countdown(None)).edges[0].label == ""
    idiom = graph(games.load("idiom-chain")).edges[0]
    assert idiom.label == "start [strict] [solo] (member or group: start_kind)"
    for drawn in (parse_dot(render(COUNTDOWN, "dot")),
                  parse_mermaid(render(COUNTDOWN, "mermaid"))):
        starts = [labels for s, _, _, labels in drawn.raw_edges
                  if drawn.specials.get(s) == "start"]
        assert starts == [["start [COUNT] (member)"]], starts
