"""README's rules a user needs to write a spec hold as written: the default classifier
(`exit` is a message, `/exit` the event), a classifier of one's own, and `reset_timeout`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from convo_fsm import KEEP, STOP, On, Spec, State, Timeout, classify_text
from convo_fsm.testing import ConversationTester

ROOT = Path(__file__).resolve().parents[2]


def _quiz() -> Spec:
    found = importlib.util.spec_from_file_location("readme_quiz_rules",
                                                   ROOT / "examples" / "quiz.py")
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    quiz: Spec = module.quiz
    return quiz


def test_readme_states_the_rules() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for words in ("`Spec(classify=...)`", "a plain `exit` is a `message`",
                  "`On(..., reset_timeout=...)`", "reset_timeout=False"):
        assert words in readme


@pytest.mark.asyncio
async def test_plain_exit_is_a_message_and_slash_exit_the_event() -> None:
    t = ConversationTester(_quiz())
    await t.start("alice")
    assert await t.say("alice", "exit") == ["No, try again."]
    assert await t.say("alice", "/exit") == ["Bye."]
    assert t.state("alice") is None


@pytest.mark.asyncio
async def test_a_classifier_of_ones_own_makes_plain_exit_the_event() -> None:
    quiz = _quiz()
    spec = Spec(name="quiz2", initial=quiz.initial, states=list(quiz.states),
                any_state=list(quiz.any_state),
                classify=lambda e: "exit" if e.text.strip().lower() == "exit"
                else classify_text(e))  # README's example, verbatim
    t = ConversationTester(spec)
    await t.start("alice")
    assert await t.say("alice", " Exit ") == ["Bye."]


@pytest.mark.asyncio
async def test_reset_timeout_false_keeps_the_clock_running() -> None:
    spec = Spec(name="turn", initial="asking", states=[State(
        "asking",
        on=[On("message", KEEP, guard=lambda c: c.text == "ok", action=lambda c: c.reply("ok")),
            On("message", KEEP, action=lambda c: c.reply("no"), reset_timeout=False),
            On("again", "asking")],
        timeout=Timeout(60, STOP, action=lambda c: c.reply("time")))])
    t = ConversationTester(spec)
    await t.start("a")
    await t.advance(40)
    assert await t.say("a", "wrong") == ["no"]  # no more time given
    assert await t.advance(20) == ["time"]  # still over at 60 s
    await t.start("a")
    await t.advance(40)
    assert await t.say("a", "ok") == ["ok"]  # a KEEP restarts the timeout by default
    assert await t.advance(59) == []
    assert await t.say("a", "/again") == []  # into the same state by name: afresh too
    assert await t.advance(59) == []
    assert await t.advance(1) == ["time"]
