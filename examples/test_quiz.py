"""Testing the quiz of README: `.venv/bin/python -m pytest examples/test_quiz.py`.
It needs pytest and pytest-asyncio (`pip install pytest pytest-asyncio`), in any folder."""

import pytest
from quiz import quiz

from convo_fsm.testing import ConversationTester


@pytest.mark.asyncio  # pytest-asyncio runs the async test (no config needed)
async def test_a_slow_player_is_reminded_and_can_still_win() -> None:
    t = ConversationTester(quiz)
    assert await t.start("alice") == ["What is 6 x 7?"]
    assert await t.say("alice", "41") == ["No, try again."]
    assert await t.advance(20) == ["10 s left"]
    assert await t.advance(10) == ["Still there? One more chance."]
    assert t.state("alice") == "reminded"
    assert await t.say("alice", "42") == ["Thanks for playing."]
    assert t.state("alice") is None  # the session ended in its final state
