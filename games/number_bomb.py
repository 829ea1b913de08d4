"""数字炸弹 (number bomb): a group game. A bomb hides at a number; players take turns
guessing, each wrong guess shrinks the range, and whoever names the bomb loses.

One session per group ("group" key); the players, their order and the range
live in that session's data. Each player is the message's sender.

States, top to bottom:

- `lobby`   the starter (the host) is in; others send `join`. The host's `go`
            starts the game once someone has joined; otherwise, 60 s after the
            lobby opened, the game starts if someone has joined and is cancelled
            if nobody has (one timeout, two targets chosen by a guard).
- `playing` players guess in join order. Only the current player's numbers count:
            anyone else gets "not your turn". A number outside the range gets
            the range. A wrong guess shrinks the range to the side of the bomb and
            passes the turn; naming the bomb ends the game (that player loses).
            A turn has 30 s (warning 10 s before); when it runs out the player is
            skipped and the game moves to
- `skipped` the same rules; a guess brings it back to `playing`, but a second
            turn in a row that runs out ends the game (nobody is playing).

`help` works in every state; `exit` ends the game, for the host only. Other
text (chat) is left alone: it is handed back to the host application.

Start arguments: `[LOW-HIGH]` (default 1-100). The bomb comes from
`random.Random(f"{seed}:bomb")`: a seed replays the same game.
"""

from __future__ import annotations

import random
import re
from typing import Any

from convo_fsm import KEEP, STOP, Context, On, Spec, Start, StartArgs, State, Timeout, When
from convo_fsm.spec import Target
from games._common import as_int, classifier, speaker

__all__ = ["LOBBY_SECONDS", "SPEC", "TURN_SECONDS", "WARN_BEFORE", "parse_start"]

LOBBY_SECONDS = 60.0
TURN_SECONDS = 30.0
WARN_BEFORE = 10.0
DEFAULT_RANGE = (1, 100)
MAX_PLAYERS = 50


# -- who is who ------------------------------------------------------------------------------
def current(data: dict[str, Any]) -> str:
    players: list[str] = data["players"]
    turn: int = data["turn"]
    return players[turn % len(players)]


def is_host(ctx: Context) -> bool:
    return speaker(ctx) == str(ctx.data["host"])


def is_new(ctx: Context) -> bool:
    return speaker(ctx) not in ctx.data["players"] and len(ctx.data["players"]) < MAX_PLAYERS


def has_players(ctx: Context) -> bool:
    """Someone besides the host has joined."""
    return len(ctx.data["players"]) >= 2


def host_with_players(ctx: Context) -> bool:
    return is_host(ctx) and has_players(ctx)


def _number(ctx: Context) -> int | None:
    return as_int(ctx.text)


def not_your_turn(ctx: Context) -> bool:
    return _number(ctx) is not None and speaker(ctx) != current(ctx.data)


def out_of_range(ctx: Context) -> bool:
    n = _number(ctx)
    return n is not None and not ctx.data["lo"] <= n <= ctx.data["hi"]


def hits_bomb(ctx: Context) -> bool:
    return _number(ctx) == int(ctx.data["bomb"])


def is_guess(ctx: Context) -> bool:
    """A number from the current player (the guards above have ruled out the rest)."""
    return _number(ctx) is not None


# -- what the bot says -----------------------------------------------------------------------
def _range(data: dict[str, Any]) -> str:
    return f"{data['lo']}-{data['hi']}"


def open_lobby(ctx: Context) -> None:
    ctx.reply(f"数字炸弹! {ctx.data['host']} starts a number bomb ({ctx.data['low']}-"
              f"{ctx.data['high']}). Send 'join' to play: it starts in {LOBBY_SECONDS:g} s "
              f"(or when {ctx.data['host']} says 'go'); if nobody has joined by then, it is "
              "cancelled.")


def add_player(ctx: Context) -> None:
    ctx.data["players"].append(speaker(ctx))
    players = ctx.data["players"]
    ctx.reply(f"{speaker(ctx)} joins. Players: {', '.join(players)}.")


def already_in(ctx: Context) -> None:
    who = speaker(ctx)
    if who in ctx.data["players"]:
        ctx.reply(f"{who}, you are already in.")
    else:
        ctx.reply(f"{who}, the game is full ({MAX_PLAYERS} players).")


def need_two(ctx: Context) -> None:
    ctx.reply("Waiting for a second player: send 'join'.")


def host_only(ctx: Context) -> None:
    ctx.reply(f"Only {ctx.data['host']} (the host) can do that.")


def cancel(ctx: Context) -> None:
    ctx.reply("Nobody joined: number bomb cancelled.")


def arm_bomb(ctx: Context) -> None:
    d = ctx.data
    d["bomb"] = random.Random(f"{d['seed']}:bomb").randint(d["low"], d["high"])
    d["lo"], d["hi"], d["turn"] = d["low"], d["high"], 0
    ctx.reply(f"The bomb is set somewhere in {_range(d)}. Order: {', '.join(d['players'])}. "
              f"{current(d)}, your guess ({TURN_SECONDS:g} s).")


def say_not_your_turn(ctx: Context) -> None:
    ctx.reply(f"{speaker(ctx)}: not your turn, it is {current(ctx.data)}'s.")


def say_out_of_range(ctx: Context) -> None:
    ctx.reply(f"{speaker(ctx)}: pick a number in {_range(ctx.data)}.")


def narrow(ctx: Context) -> None:
    d = ctx.data
    n = _number(ctx)
    assert n is not None
    if n < d["bomb"]:
        d["lo"] = n + 1
    else:
        d["hi"] = n - 1
    d["turn"] += 1
    ctx.reply(f"Safe! The bomb is in {_range(d)}. {current(d)}, your turn.")


def boom(ctx: Context) -> None:
    ctx.reply(f"💥 BOOM! {ctx.data['bomb']} was the bomb: {speaker(ctx)} loses. Game over.")


def warn(ctx: Context) -> None:
    ctx.reply(f"{current(ctx.data)}: {WARN_BEFORE:g} s left, the bomb is in "
              f"{_range(ctx.data)}.")


def skip(ctx: Context) -> None:
    d = ctx.data
    late = current(d)
    d["turn"] += 1
    ctx.reply(f"{late} ran out of time and is skipped. {current(d)}, your turn "
              f"({_range(d)}).")


def abandon(ctx: Context) -> None:
    ctx.reply(f"{current(ctx.data)} ran out of time too: two turns in a row without a guess, "
              f"game abandoned. The bomb was {ctx.data['bomb']}.")


def too_late(ctx: Context) -> None:
    ctx.reply(f"{speaker(ctx)}: the game has started; join the next one.")


def show_help(ctx: Context) -> None:
    ctx.reply("Number bomb: 'join' to play; in turn, send a number in the range; whoever names "
              "the bomb loses. The host can say 'go' to start and 'exit' to end it.")


def say_bye(ctx: Context) -> None:
    bomb = ctx.data.get("bomb")
    told = "" if bomb is None else f" The bomb was {bomb}."
    ctx.reply(f"Number bomb ended by the host.{told}")


# -- starting -------------------------------------------------------------------------------
_RANGE = re.compile(r"^(-?\d+)\s*(?:-|\.\.|~|to)\s*(-?\d+)$")


def parse_start(args: StartArgs) -> dict[str, Any]:
    """`[LOW-HIGH]` -> the first data (the starter is the host); ValueError saying what is
    wrong."""
    host = args.sender or "host"
    low, high = DEFAULT_RANGE
    words = args.words
    if len(words) > 1:
        raise ValueError(f"one argument at most, got {args.text!r}")
    if words:
        found = _RANGE.match(words[0])
        if not found:
            raise ValueError(f"{words[0]!r} is not a range like 1-100")
        low, high = int(found[1]), int(found[2])
        if not high - low >= 2 or high - low > 10**12:
            raise ValueError(f"range {words[0]!r} needs HIGH - LOW from 2 to 10**12")
    return {"low": low, "high": high, "seed": args.seed, "host": host, "players": [host],
            "turn": 0, "lo": low, "hi": high, "bomb": None}


# -- the table ------------------------------------------------------------------------------
def turn(after_guess: Target) -> list[On]:
    """A turn's rules, the same in `playing` and `skipped`; a safe guess goes to
    `after_guess`."""
    return [
        On("message", KEEP, guard=not_your_turn, action=say_not_your_turn,
           reset_timeout=False),
        On("message", KEEP, guard=out_of_range, action=say_out_of_range, reset_timeout=False),
        On("message", "boom", guard=hits_bomb, action=boom),
        On("message", after_guess, guard=is_guess, action=narrow),
        On("join", KEEP, action=too_late, reset_timeout=False),
    ]


SPEC = Spec(
    name="number-bomb",
    initial="lobby",
    classify=classifier({
        "join": "join", "加入": "join", "go": "go", "开始": "go",
        "help": "help", "帮助": "help", "exit": "exit", "退出": "exit",
    }),
    states=[
        State(
            "lobby",
            enter=open_lobby,
            on=[
                On("join", KEEP, guard=is_new, action=add_player, reset_timeout=False),
                On("join", KEEP, action=already_in, reset_timeout=False),
                On("go", "playing", guard=host_with_players, action=arm_bomb),
                On("go", KEEP, guard=is_host, action=need_two, reset_timeout=False),
                On("go", KEEP, action=host_only, reset_timeout=False),
            ],
            # One timeout, two ways out: with company the game starts, alone it is cancelled.
            timeout=Timeout(LOBBY_SECONDS, STOP, action=cancel,
                            when=[When("playing", guard=has_players, action=arm_bomb)]),
        ),
        State(
            "playing",
            on=turn(after_guess=KEEP),
            timeout=Timeout(TURN_SECONDS, "skipped", action=skip,
                            warn_before=WARN_BEFORE, warn=warn),
        ),
        State(
            "skipped",
            on=turn(after_guess="playing"),
            timeout=Timeout(TURN_SECONDS, STOP, action=abandon,
                            warn_before=WARN_BEFORE, warn=warn),
        ),
        State("boom", final=True),
    ],
    any_state=[
        On("help", KEEP, action=show_help, reset_timeout=False),
        On("exit", STOP, guard=is_host, action=say_bye),
        On("exit", KEEP, action=host_only, reset_timeout=False),
    ],
    start=Start(parse_start, kind="group", usage="[LOW-HIGH]", group_only=True),
)
