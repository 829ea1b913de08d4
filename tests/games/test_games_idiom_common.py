"""成语接龙 plays with idioms people know: openings, answers and hints are common ones by
jieba's word counts (read here straight from jieba's dict.txt, not from the game's index);
input is normalised without merging words; wrong lengths are told as such."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from games_kit import continuations, jieba_counts, play, replies

from convo_fsm.testing import ConversationTester
from games import idiom_chain

SPEC = idiom_chain.SPEC


def _count(idiom: str) -> int:
    return jieba_counts().get(idiom, 0)


async def _opening(seed: int, strict: bool = False) -> tuple[ConversationTester, str]:
    t = ConversationTester(SPEC, seed=seed)
    [text] = await t.start("alice", "/start strict" if strict else "/start")
    found = re.search(r"I start: (\w{4})\.", text)
    assert found, text
    return t, found[1]


@pytest.mark.parametrize("strict", [False, True])
async def test_openings_are_common_idioms(strict: bool) -> None:
    openings = [(await _opening(seed, strict))[1] for seed in range(30)]
    assert all(_count(o) >= 50 for o in openings), [(o, _count(o)) for o in openings]
    assert len(set(openings)) >= 20  # and not always the same few


async def test_answers_and_hints_are_the_most_common_good_continuations() -> None:
    for seed in range(12):
        t, opening = await _opening(seed)
        used = {opening}
        mine = max(continuations(opening, used, strict=False), key=_count)
        [answer] = await t.say("alice", mine)
        if "win" in answer:
            continue
        bot = answer[:4]
        used |= {mine, bot}
        # Every unused continuation of my idiom that leaves a move, most common first.
        good = sorted((c for c in continuations(mine, used - {bot}, strict=False)
                       if continuations(c, used | {c}, strict=False)), key=_count, reverse=True)
        assert bot in good
        assert _count(bot) >= _count(good[min(3, len(good) - 1)])  # one of the 4 most common
        [hint] = await t.say("alice", "hint")
        start = re.fullmatch(r"Hint: (\w\w)__", hint)
        assert start, hint
        options = [c for c in continuations(bot, used, strict=False) if c.startswith(start[1])]
        assert max(_count(c) for c in options) >= _count(
            sorted(continuations(bot, used, strict=False), key=_count, reverse=True)[
                min(3, len(continuations(bot, used, strict=False)) - 1)])


async def test_input_is_normalised_without_merging_words_and_lengths_are_told() -> None:
    t, opening = await _opening(3)
    [reply] = await t.say("alice", "hello world")
    assert reply.startswith("「hello world」 is not Chinese")
    [reply] = await t.say("alice", opening[:3])
    assert reply.startswith(f"「{opening[:3]}」 has 3 characters: an idiom here has four "
                            "characters.")
    [reply] = await t.say("alice", " ".join(opening) + "。")  # spaced out, a full stop
    assert reply.startswith(f"「{opening}」 was already used")
    assert idiom_chain.normalise("  一 心\t一 意！ ") == "一心一意"
    assert idiom_chain.normalise("hello   world") == "hello world"
    assert idiom_chain.normalise("abc 一心") == "abc 一心"


def test_the_cli_says_the_rules_of_the_game_before_it_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = play(tmp_path, capsys, "idiom-chain", "/help\n/foo\nhello\n", "--virtual")
    assert code == 0 and not replies(out)
    assert "(idiom-chain: /start [strict] [solo] starts it for you (options: [strict] [solo]))" \
        in out
    assert out.count("no game is running for you") == 2  # /foo and chatter answered too
