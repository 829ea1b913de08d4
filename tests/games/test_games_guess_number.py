"""Guess the number: a scripted transcript through the CLI, and its rules under hypothesis."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from games_kit import play, replies
from hypothesis import given, settings
from hypothesis import strategies as st

import games
from convo_fsm.testing import ConversationTester
from games import guess_number

SPEC = games.load("guess-number")


def secret_of(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: str, start: str) -> int:
    """Play `start` then `exit` with `seed`: the game tells its number as it ends."""
    _, out, _ = play(tmp_path, capsys, "guess-number", f"{start}\nexit\n", "--virtual",
                     "--seed", seed)
    found = re.search(r"The number was (-?\d+)", out)
    assert found, out
    return int(found[1])


def test_transcript_bad_input_reminder_timeout_and_exit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = secret_of(tmp_path, capsys, "7", "/start 1-10 3")
    wrong = 1 if secret != 1 else 2
    script = "\n".join([
        "/start 1-10 3", "abc", "11", "", "# a comment", str(wrong), "/help",
        "/wait 30", "/wait 29", "/wait 1", "/start 1-10 3", "exit",
    ])
    code, out, _ = play(tmp_path, capsys, "guess-number", script, "--virtual", "--seed", "7")
    assert code == 0
    said = replies(out)
    texts = [text for _, _, text in said]
    assert all(to == "you" for _, to, _ in said)
    assert texts[0].startswith("I'm thinking of a number from 1 to 10. You have 3 attempts")
    assert texts[1] == "'abc' is not a number: send a whole number from 1 to 10 (no attempt used)."
    assert texts[2] == "11 is out of range: the number is from 1 to 10 (no attempt used)."
    assert texts[3] == ("Higher." if secret > wrong else "Lower.") + " 2 attempts left."
    assert texts[4].startswith("Send a whole number from 1 to 10")
    # The reminder comes 30 s after the last guess, the end 60 s after it; help did not
    # restart the clock, bad input did not either.
    assert said[5][0] == 30 and texts[5] == "Still there? 30 s left to guess (2 attempts left)."
    assert said[6][0] == 60 and texts[6] == f"Time's up: the number was {secret}."
    # A new game after the timeout (the run's second game has its own seed); exit ends it.
    assert texts[7].startswith("I'm thinking of a number from 1 to 10")
    assert re.fullmatch(r"Game ended\. The number was \d+\.", texts[8])
    assert len(texts) == 9


def test_transcript_a_win_and_a_loss(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = secret_of(tmp_path, capsys, "11", "/start 1-1000 2")
    wrong = secret + 1 if secret < 1000 else secret - 1
    _, out, _ = play(tmp_path, capsys, "guess-number", f"/start 1-1000 2\n{wrong}\n{secret}\n",
                     "--virtual", "--seed", "11")
    assert replies(out)[-1][2] == f"{secret} is right! You got it in 2 attempts."
    _, out, _ = play(tmp_path, capsys, "guess-number", f"/start 1-1000 2\n{wrong}\n{wrong}\n",
                     "--virtual", "--seed", "11")
    assert replies(out)[-1][2] == f"No attempts left: the number was {secret}."


def test_members_of_one_group_each_play_their_own_game(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = "/as alice@g1\n/start 1-5 1\n/as bob@g1\n/start 1-5 4\nx\n/as alice@g1\nx\n"
    _, out, _ = play(tmp_path, capsys, "guess-number", script, "--virtual", "--seed", "3")
    said = replies(out)
    assert [to for _, to, _ in said] == ["alice@g1", "bob@g1", "bob@g1", "alice@g1"]
    assert "1 attempt and" in said[0][2] and "4 attempts" in said[1][2]


# -- rules, under hypothesis -------------------------------------------------------------------
garbage = st.sampled_from(["", "abc", "1.5", "ten", "--3", "1e3", "+", "３x"])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), low=st.integers(-50, 50), span=st.integers(1, 60),
       attempts=st.integers(1, 8),
       moves=st.lists(st.one_of(st.integers(-120, 180).map(str), garbage), max_size=25))
def test_bad_input_never_costs_an_attempt_and_hints_point_to_the_number(
        seed: int, low: int, span: int, attempts: int, moves: list[str]) -> None:
    async def run() -> None:
        t = ConversationTester(SPEC)
        high = low + span
        start = guess_number.SPEC.begin(None, f"{low}..{high} {attempts}", seed=seed)
        await t.start("p", data=start.data)
        secret = t.data("p")["secret"]
        assert low <= secret <= high
        left = attempts
        for move in moves:
            if t.state("p") is None:
                break
            said = await t.say("p", move)
            number = int(move) if re.fullmatch(r"[+-]?\d+", move) else None
            if number is None or not low <= number <= high:
                assert "no attempt used" in said[0]
                assert t.data("p")["left"] == left
                continue
            left -= 1
            if number == secret:
                assert said[0].startswith(f"{secret} is right!")
                assert t.ended("p") is not None and t.ended("p").session.state == "won"
            elif left == 0:
                assert said[0] == f"No attempts left: the number was {secret}."
                assert t.ended("p") is not None and t.ended("p").session.state == "lost"
            else:
                assert said[0].startswith("Higher." if secret > number else "Lower.")
                assert t.data("p")["left"] == left
        await t.close()

    asyncio.run(run())
