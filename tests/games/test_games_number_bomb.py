"""数字炸弹: a scripted group game through the CLI (lobby, turns, timeouts, host-only exit),
the lobby's two ways out, and the turn rules under hypothesis."""

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
from games import number_bomb

SPEC = games.load("number-bomb")


def test_transcript_lobby_turns_not_your_turn_skip_and_abandon(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = "\n".join([
        "/start",                       # a private chat: refused, with how to do it
        "/as alice@g1", "/start 1-10",  # alice hosts
        "/as bob@g1", "join", "join", "go",
        "/wait 10", "/as carol@g1", "加入", "hi everyone",
        "/as alice@g1", "go",
        "/as bob@g1", "5",              # not bob's turn
        "/as alice@g1", "abc", "50",    # chat is ignored; out of range is told
        "/wait 29", "/wait 1",          # alice is warned, then skipped
        "/as bob@g1", "exit",           # only the host may end it
        "/wait 30",                     # bob times out too: abandoned
    ])
    code, out, _ = play(tmp_path, capsys, "number-bomb", script, "--virtual", "--seed", "2")
    assert code == 0
    assert "(Cannot start number-bomb: it is a group game" in out
    said = replies(out)
    assert {to for _, to, _ in said} == {"@g1"}
    texts = [text for _, _, text in said]
    assert texts[0].startswith("数字炸弹! alice starts a number bomb (1-10).")
    assert texts[1:4] == ["bob joins. Players: alice, bob.", "bob, you are already in.",
                          "Only alice (the host) can do that."]
    assert texts[4] == "carol joins. Players: alice, bob, carol."
    assert texts[5].startswith("The bomb is set somewhere in 1-10. Order: alice, bob, carol. "
                               "alice, your guess")
    assert texts[6] == "bob: not your turn, it is alice's."
    assert texts[7] == "alice: pick a number in 1-10."
    assert said[8][0] == 30 and texts[8] == "alice: 10 s left, the bomb is in 1-10."
    assert said[9][0] == 40 and texts[9] == ("alice ran out of time and is skipped. bob, your "
                                             "turn (1-10).")
    assert texts[10] == "Only alice (the host) can do that."
    assert said[11][0] == 60 and texts[11] == "bob: 10 s left, the bomb is in 1-10."
    assert said[12][0] == 70 and re.fullmatch(
        r"bob ran out of time too: two turns in a row without a guess, game abandoned\. "
        r"The bomb was \d+\.", texts[12])
    assert len(texts) == 13


def test_transcript_a_guess_narrows_the_range_and_the_bomb_ends_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lobby = "/as ann@g\n/start 1-3\n/as ben@g\njoin\n/as ann@g\ngo\n"
    _, out, _ = play(tmp_path, capsys, "number-bomb", lobby + "exit\n", "--virtual",
                     "--seed", "8")
    bomb = int(re.findall(r"The bomb was (\d+)\.", out)[-1])
    safe = 1 if bomb != 1 else 3
    script = lobby + f"{safe}\n/as ben@g\n{bomb}\n"
    _, out, _ = play(tmp_path, capsys, "number-bomb", script, "--virtual", "--seed", "8")
    texts = [text for _, _, text in replies(out)]
    lo, hi = (2, 3) if safe < bomb else (1, 2)
    assert texts[-2] == f"Safe! The bomb is in {lo}-{hi}. ben, your turn."
    assert texts[-1] == f"💥 BOOM! {bomb} was the bomb: ben loses. Game over."


def test_the_lobby_cancels_alone_and_starts_by_itself_with_two() -> None:
    lobby = SPEC.by_name["lobby"]
    assert lobby.timeout is not None and len(lobby.timeout.branches) == 2
    assert "ready" not in SPEC.by_name
    async def run() -> None:
        t = ConversationTester(SPEC, kind="group")
        start = number_bomb.SPEC.begin(t.message("ann", "/start", "g"), "", seed=1)
        await t.start("ann", group="g", data=start.data)
        assert await t.say("ann", "go", group="g") == ["Waiting for a second player: send 'join'."]
        assert await t.advance(60) == ["Nobody joined: number bomb cancelled."]
        assert t.state("ann", group="g") is None
        await t.start("ann", group="g", data=start.data)
        await t.advance(59)
        await t.say("ben", "join", group="g")
        assert t.state("ann", group="g") == "lobby"  # one lobby state, its clock not reset
        said = await t.advance(1)  # the lobby's timeout: with company, the game starts
        assert said[0].startswith("The bomb is set somewhere in 1-100. Order: ann, ben.")
        assert t.state("ann", group="g") == "playing"
        await t.close()

    asyncio.run(run())


def test_start_refuses_a_private_chat_and_bad_ranges() -> None:
    t = ConversationTester(SPEC, kind="group")
    with pytest.raises(ValueError, match="group game"):
        number_bomb.SPEC.begin(t.message("ann", "/start"), "", seed=1)
    for bad in ("1-2", "x", "1-10 20"):
        with pytest.raises(ValueError, match=r"number-bomb|range"):
            number_bomb.SPEC.begin(t.message("ann", "/start", "g"), bad, seed=1)


# -- rules, under hypothesis -------------------------------------------------------------------
players = ["ann", "ben", "cat"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), joined=st.integers(2, 3),
       moves=st.lists(st.tuples(st.sampled_from([*players, "dan"]), st.integers(-5, 40)),
                      max_size=40))
def test_only_the_current_players_guesses_count(
        seed: int, joined: int, moves: list[tuple[str, int]]) -> None:
    async def run() -> None:
        t = ConversationTester(SPEC, kind="group")
        start = number_bomb.SPEC.begin(t.message("ann", "/start", "g"), "1-30", seed=seed)
        await t.start("ann", group="g", data=start.data)
        for name in players[1:joined]:
            await t.say(name, "join", group="g")
        await t.say("ann", "go", group="g")
        data = t.data("ann", group="g")
        bomb, order = data["bomb"], data["players"]
        assert order == players[:joined] and 1 <= bomb <= 30
        for who, n in moves:
            before = dict(data)
            now = order[before["turn"] % joined]
            said = await t.say(who, str(n), group="g")
            assert said.consumed
            if who != now:
                assert said == [f"{who}: not your turn, it is {now}'s."]
                assert (data["lo"], data["hi"], data["turn"]) == \
                       (before["lo"], before["hi"], before["turn"])
            elif not before["lo"] <= n <= before["hi"]:
                assert said == [f"{who}: pick a number in {before['lo']}-{before['hi']}."]
                assert data["turn"] == before["turn"]
            elif n == bomb:
                assert said == [f"💥 BOOM! {bomb} was the bomb: {who} loses. Game over."]
                assert t.state("ann", group="g") is None
                break
            else:
                assert data["turn"] == before["turn"] + 1
                assert data["lo"] <= bomb <= data["hi"]
                assert data["hi"] - data["lo"] < before["hi"] - before["lo"]
        await t.close()

    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6),
       moves=st.lists(st.one_of(st.just("guess"), st.integers(1, 45)), max_size=20))
def test_a_turn_that_runs_out_skips_the_player_and_two_in_a_row_end_the_game(
        seed: int, moves: list[str | int]) -> None:
    """Moves: "guess" (the current player names a safe number) or seconds of silence."""
    async def run() -> None:
        t = ConversationTester(SPEC, kind="group")
        start = number_bomb.SPEC.begin(t.message("ann", "/start", "g"), "1-1000", seed=seed)
        await t.start("ann", group="g", data=start.data)
        await t.say("ben", "join", group="g")
        await t.say("ann", "go", group="g")
        data = t.data("ann", group="g")
        quiet = 0.0  # seconds since the current turn began
        skips = 0  # turns in a row that ran out
        for m in moves:
            if t.state("ann", group="g") is None:
                break
            now = ["ann", "ben"][data["turn"] % 2]
            if m == "guess":
                n = data["lo"] if data["lo"] != data["bomb"] else data["hi"]
                if n == data["bomb"]:
                    break  # only the bomb is left
                turn = data["turn"]
                await t.say(now, str(n), group="g")
                assert data["turn"] == turn + 1 and t.state("ann", group="g") == "playing"
                quiet, skips = 0.0, 0
                continue
            assert isinstance(m, int)
            turn = data["turn"]
            said = await t.advance(m)
            ran_out = int((quiet + m) // 30)  # whole turns that ran out in the silence
            expected_skips = min(ran_out, 2 - skips)
            skips += expected_skips
            quiet = (quiet + m) % 30 if ran_out else quiet + m
            if skips >= 2:
                assert t.state("ann", group="g") is None
                assert any("game abandoned" in s for s in said)
                break
            assert data["turn"] == turn + expected_skips
            assert t.state("ann", group="g") == ("skipped" if skips else "playing")
        await t.close()

    asyncio.run(run())
