"""Games declared as state tables, one module per game.

Each game module is readable top to bottom: its rules, then its `SPEC` (a
`convo_fsm.Spec`). The spec declares its own start (`Spec.start`): the start
command's arguments parsed into the session's first data, and how the session
is keyed ("member" = one session per player, "group" = one per chat, played by
everyone in it as a team), so `spec.begin(event, seed=...)` starts any game
with nothing from here.

This registry is only the list of games: names, where each spec is, and one
line saying what it is (for `convo-fsm play --list` and the AstrBot plugin's
`/games`).
"""

from __future__ import annotations

import importlib
from typing import Any

import attrs

from convo_fsm import Spec

__all__ = ["DESCRIPTIONS", "GAMES", "GameInfo", "UnknownGame", "info", "load"]

GAMES: dict[str, str] = {
    "idiom-chain": "games.idiom_chain:SPEC",
    "guess-number": "games.guess_number:SPEC",
    "number-bomb": "games.number_bomb:SPEC",
}
"""Game name -> "module:attribute" of its Spec."""

DESCRIPTIONS: dict[str, str] = {
    "idiom-chain": "成语接龙: continue the chain of four-character idioms; alone or as a group.",
    "guess-number": "Guess the number: higher/lower hints, a limited number of attempts.",
    "number-bomb": "数字炸弹: a group game; take turns guessing, whoever names the bomb loses.",
}
"""Game name -> one line saying what the game is."""


@attrs.frozen
class GameInfo:
    name: str
    spec: str
    description: str


class UnknownGame(LookupError):
    """A game name that is not in `GAMES`."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown game {name!r}; known games: {', '.join(sorted(GAMES))}")
        self.name = name


def info(name: str) -> GameInfo:
    if name not in GAMES:
        raise UnknownGame(name)
    return GameInfo(name, GAMES[name], DESCRIPTIONS[name])


def _module(name: str) -> tuple[Any, str]:
    if not isinstance(name, str) or name not in GAMES:
        raise UnknownGame(name)
    module_name, _, attribute = GAMES[name].partition(":")
    return importlib.import_module(module_name), attribute


def load(name: str) -> Spec:
    """The Spec of game `name`; `UnknownGame` (a LookupError) for a name not in `GAMES`."""
    module, attribute = _module(name)
    spec = getattr(module, attribute)
    if not isinstance(spec, Spec):
        raise TypeError(f"{GAMES[name]} is a {type(spec).__name__}, not a convo_fsm.Spec")
    return spec
