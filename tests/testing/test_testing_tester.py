"""ConversationTester: a conversation tested in a few readable lines."""

from __future__ import annotations

import pytest

from convo_fsm import KEEP, STOP, Context, On, Spec, State, Timeout
from convo_fsm.testing import ConversationTester


def wrong(ctx: Context) -> None:
    ctx.data["tries"] = ctx.data.get("tries", 0) + 1
    ctx.reply("No, try again.")


QUIZ = Spec(
    name="tester-quiz",
    initial="asking",
    states=[
        State("asking", enter=lambda c: c.reply("What is 6 x 7?"),
              on=[On("message", "done", guard=lambda c: c.text.strip() == "42",
                     action=lambda c: c.reply("Right!")),
                  On("message", KEEP, action=wrong)],
              timeout=Timeout(30, "reminded", warn_before=10,
                              warn=lambda c: c.reply("10 s left"))),
        State("reminded", enter=lambda c: c.reply("Still there?"),
              on=[On("message", "done", guard=lambda c: c.text.strip() == "42")],
              timeout=Timeout(30, STOP, action=lambda c: c.reply("Time's up."))),
        State("done", final=True, enter=lambda c: c.reply("Thanks.")),
    ],
    any_state=[On("exit", STOP, action=lambda c: c.reply("Bye."))],
)


async def test_a_whole_quiz_in_readable_lines() -> None:
    t = ConversationTester(QUIZ)
    assert await t.start("alice") == ["What is 6 x 7?"]
    assert await t.say("alice", "41") == ["No, try again."]
    assert t.data("alice") == {"tries": 1}
    assert await t.advance(20) == ["10 s left"]
    assert await t.advance(10) == ["Still there?"]
    assert t.state("alice") == "reminded"
    assert await t.say("alice", "42") == ["Thanks."]
    assert t.state("alice") is None
    ended = t.ended("alice")
    assert ended is not None and ended.reason == "final"


async def test_users_and_groups_are_separate_sessions() -> None:
    t = ConversationTester(QUIZ)
    await t.start("alice", group="g")
    await t.start("bob")
    unknown = await t.say("carol", "42")
    assert unknown == [] and not unknown.consumed  # handed back: carol has no session
    assert (await t.say("bob", "42")).consumed
    assert t.state("alice", group="g") == "asking"
    assert t.state("bob") is None
    assert t.inbox("bob") == ["What is 6 x 7?", "Right!", "Thanks."]
    assert await t.advance(60) == ["10 s left", "Still there?", "Time's up."]
    assert t.ended("alice", group="g").reason == "timeout"  # type: ignore[union-attr]


async def test_group_kind_shares_one_session_per_chat() -> None:
    t = ConversationTester(QUIZ, kind="group")
    await t.start("alice", group="g")
    assert await t.say("bob", "/exit", group="g") == ["Bye."]
    assert t.state("alice", group="g") is None


async def test_stop_force_and_errors_are_clear() -> None:
    t = ConversationTester(QUIZ)
    await t.start("alice")
    t.force("alice", "reminded")
    assert t.state("alice") == "reminded"
    assert t.stop("alice") and not t.stop("alice")
    with pytest.raises(LookupError, match="alice"):
        t.data("alice")
    with pytest.raises(TypeError, match="Spec"):
        ConversationTester("quiz")  # type: ignore[arg-type]
    assert [r["kind"] for r in t.transcript][-3:] == ["force", "stop", "end"]
