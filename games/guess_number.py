"""Guess the number: the bot thinks of a number, the player has a few attempts.

Rules, in the order the table below applies them to each message:

1. Not a number: say so. It costs no attempt and does not restart the clock.
2. Out of range: say so. Same: no attempt, no new clock.
3. The number: the player wins.
4. Wrong, and it was the last attempt: the player loses; the number is told.
5. Wrong: "higher" or "lower", one attempt less, the clock restarts.

Each guess has 60 s; at 30 s the bot reminds once, at 60 s the game ends.
`help` and `exit` work at any time. Keyed per player ("member"): in a group
every member plays their own game.

Start arguments (`/start [LOW-HIGH] [ATTEMPTS]`, e.g. `/start 1-1000 10`):
the range (default 1-100) and the attempts (default 7). The secret comes
from `random.Random(seed)`, so a seed replays the same game.
"""

from __future__ import annotations

import random
import re
from typing import Any

from convo_fsm import KEEP, STOP, Context, On, Spec, Start, StartArgs, State, Timeout
from games._common import as_int, classifier, plural

__all__ = ["GUESS_SECONDS", "REMIND_BEFORE", "SPEC", "parse_start"]

GUESS_SECONDS = 60.0
REMIND_BEFORE = 30.0
DEFAULT_RANGE = (1, 100)
DEFAULT_ATTEMPTS = 7
MAX_ATTEMPTS = 100
MAX_SPAN = 10**12


# -- what a message is ---------------------------------------------------------------------
def _guess(ctx: Context) -> int | None:
    return as_int(ctx.text)


def not_a_number(ctx: Context) -> bool:
    return _guess(ctx) is None


def out_of_range(ctx: Context) -> bool:
    guess = _guess(ctx)
    return guess is not None and not ctx.data["low"] <= guess <= ctx.data["high"]


def is_right(ctx: Context) -> bool:
    return _guess(ctx) == int(ctx.data["secret"])


def last_attempt(ctx: Context) -> bool:
    return bool(ctx.data["left"] <= 1)


# -- what the bot says -----------------------------------------------------------------------
def think_of_number(ctx: Context) -> None:
    d = ctx.data
    d["secret"] = random.Random(d["seed"]).randint(d["low"], d["high"])
    d["left"] = d["attempts"]
    d["guesses"] = []
    ctx.reply(f"I'm thinking of a number from {d['low']} to {d['high']}. "
              f"You have {plural(d['attempts'], 'attempt')} and {GUESS_SECONDS:g} s per guess.")


def say_not_a_number(ctx: Context) -> None:
    ctx.reply(f"{ctx.text.strip()!r} is not a number: send a whole number from "
              f"{ctx.data['low']} to {ctx.data['high']} (no attempt used).")


def say_out_of_range(ctx: Context) -> None:
    ctx.reply(f"{_guess(ctx)} is out of range: the number is from {ctx.data['low']} to "
              f"{ctx.data['high']} (no attempt used).")


def _count(ctx: Context) -> None:
    ctx.data["left"] -= 1
    ctx.data["guesses"].append(_guess(ctx))


def say_won(ctx: Context) -> None:
    _count(ctx)
    used = ctx.data["attempts"] - ctx.data["left"]
    ctx.reply(f"{ctx.data['secret']} is right! You got it in {plural(used, 'attempt')}.")


def say_lost(ctx: Context) -> None:
    _count(ctx)
    ctx.reply(f"No attempts left: the number was {ctx.data['secret']}.")


def higher_or_lower(ctx: Context) -> None:
    _count(ctx)
    way = "higher" if ctx.data["secret"] > (_guess(ctx) or 0) else "lower"
    ctx.reply(f"{way.capitalize()}. {plural(ctx.data['left'], 'attempt')} left.")


def remind(ctx: Context) -> None:
    ctx.reply(f"Still there? {REMIND_BEFORE:g} s left to guess "
              f"({plural(ctx.data['left'], 'attempt')} left).")


def times_up(ctx: Context) -> None:
    ctx.reply(f"Time's up: the number was {ctx.data['secret']}.")


def show_help(ctx: Context) -> None:
    ctx.reply(f"Send a whole number from {ctx.data['low']} to {ctx.data['high']}; I answer "
              "higher or lower. 'exit' ends the game.")


def say_bye(ctx: Context) -> None:
    ctx.reply(f"Game ended. The number was {ctx.data['secret']}.")


# -- starting -------------------------------------------------------------------------------
_RANGE = re.compile(r"^(-?\d+)\s*(?:-|\.\.|~|to)\s*(-?\d+)$")


def parse_start(args: StartArgs) -> dict[str, Any]:
    """`[LOW-HIGH] [ATTEMPTS]` -> the first data; ValueError naming the bad argument."""
    low, high = DEFAULT_RANGE
    attempts = DEFAULT_ATTEMPTS
    words = args.words
    if len(words) > 2:
        raise ValueError(f"at most two arguments, got {args.text!r}")
    for word in words:
        found = _RANGE.match(word)
        if found:
            low, high = int(found[1]), int(found[2])
            if not low < high or high - low > MAX_SPAN:
                raise ValueError(f"range {word!r} must have LOW < HIGH and span at most "
                                 f"{MAX_SPAN}")
        elif word.isdecimal():
            attempts = int(word)
            if not 1 <= attempts <= MAX_ATTEMPTS:
                raise ValueError(f"attempts must be from 1 to {MAX_ATTEMPTS}, got {attempts}")
        else:
            raise ValueError(f"{word!r} is neither a range (like 1-100) nor a "
                             "number of attempts")
    return {"low": low, "high": high, "attempts": attempts, "seed": args.seed}


# -- the table ------------------------------------------------------------------------------
SPEC = Spec(
    name="guess-number",
    initial="guessing",
    classify=classifier({"help": "help", "帮助": "help", "exit": "exit", "quit": "exit",
                         "退出": "exit"}),
    states=[
        State(
            "guessing",
            enter=think_of_number,
            on=[
                On("message", KEEP, guard=not_a_number, action=say_not_a_number,
                   reset_timeout=False),
                On("message", KEEP, guard=out_of_range, action=say_out_of_range,
                   reset_timeout=False),
                On("message", "won", guard=is_right, action=say_won),
                On("message", "lost", guard=last_attempt, action=say_lost),
                On("message", KEEP, action=higher_or_lower),
            ],
            timeout=Timeout(GUESS_SECONDS, STOP, action=times_up,
                            warn_before=REMIND_BEFORE, warn=remind),
        ),
        State("won", final=True),
        State("lost", final=True),
    ],
    any_state=[
        On("help", KEEP, action=show_help, reset_timeout=False),
        On("exit", STOP, action=say_bye),
    ],
    start=Start(parse_start, kind="member", usage="[LOW-HIGH] [ATTEMPTS]"),
)
