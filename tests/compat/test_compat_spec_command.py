"""spec_command: any convo_fsm Spec as an AstrBot plugin command, in PluginHost."""

from __future__ import annotations

import pytest

from convo_fsm import KEEP, STOP, On, Spec, State, Timeout
from convo_fsm.compat.astrbot import PluginHost, spec_command
from convo_fsm.compat.astrbot.api.star import Star

GUESS = Spec(
    name="guess-compat-test",
    initial="asking",
    states=[
        State("asking",
              enter=lambda ctx: ctx.reply(f"{ctx.event.sender}, guess a number"),
              on=[On("message", "done", guard=lambda ctx: ctx.text == "7",
                     action=lambda ctx: ctx.reply("right")),
                  On("message", KEEP, action=lambda ctx: ctx.reply("no"))],
              timeout=Timeout(30, STOP, action=lambda ctx: ctx.reply("too slow"))),
        State("done", final=True),
    ],
)


class Games(Star):
    guess = spec_command("guess", GUESS)
    team_guess = spec_command("team-guess", GUESS, filter="group")


async def test_spec_command_starts_a_session_that_gets_later_messages() -> None:
    host = PluginHost()
    host.load(Games)
    assert host.commands == ["guess", "team-guess"]
    assert await host.send("/guess", sender="ann", group="g") == ["ann, guess a number"]
    assert await host.send("3", sender="bo", group="g") == []  # per member: not Bo's
    assert await host.send("3", sender="ann", group="g") == ["no"]
    assert await host.send("7", sender="ann", group="g") == ["right"]
    assert len(host.engine) == 0


async def test_group_filter_shares_the_session_and_timeouts_reply() -> None:
    host = PluginHost()
    host.load(Games)
    await host.send("/team-guess", sender="ann", group="g")
    assert await host.send("3", sender="bo", group="g") == ["no"]
    # A command the spec does not name is handed back to the commands: the key is busy.
    assert await host.send("/team-guess", sender="bo", group="g") == [
        "A guess-compat-test session is already running here."]
    assert await host.advance(30) == ["too slow"]
    assert host.sent[-1] == ("convo_fsm:group|local:group:g", "too slow")
    assert len(host.engine) == 0


async def test_a_second_start_on_a_busy_key_is_answered_not_crashed() -> None:
    only_cmd = Spec(name="only-cmd-compat-test", initial="s",
                    states=[State("s", on=[On("stop", STOP)], timeout=Timeout(5))])

    class P(Star):
        go = spec_command("go", only_cmd)

    host = PluginHost()
    host.load(P)
    assert await host.send("/go") == []
    assert await host.send("/go") == ["A only-cmd-compat-test session is already running here."]
    assert await host.send("/stop") == []
    assert len(host.engine) == 0


def test_spec_command_needs_a_spec() -> None:
    with pytest.raises(TypeError, match="needs a Spec"):
        spec_command("x", "not a spec")  # type: ignore[arg-type]


async def test_load_rejects_what_is_not_a_plugin() -> None:
    host = PluginHost()
    with pytest.raises(TypeError, match="Star subclass"):
        host.load(int)  # type: ignore[arg-type]

    class Empty(Star):
        pass

    with pytest.raises(ValueError, match="has no handlers"):
        host.load(Empty)
