"""Games declared as state tables, one module per game.

Each game module is readable top to bottom: its rules, then its `SPEC` (a
`convo_fsm.Spec`), then `start(event, args, seed=...) -> Start`, which turns
the start command's arguments into the session's first data and says how the
session is keyed (`kind`: "member" = one session per player, "group" = one
per chat, played by everyone in it as a team).

This registry is the one list of games: the CLI (`convo-fsm play`), the
diagram tool and the AstrBot plugin all read it.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import attrs

from convo_fsm import Spec

__all__ = ["DESCRIPTIONS", "GAMES", "GameInfo", "Start", "UnknownGame", "info", "load", "start"]

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
class Start:
    """What starting a game gives: the session's first `data` (JSON-serialisable) and the
    engine filter `kind` that keys it ("member" or "group")."""

    data: dict[str, Any]
    kind: str


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


class _Starter(Protocol):
    def __call__(self, event: Any, args: str, *, seed: int) -> Start: ...


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


def start(name: str, event: Any, args: str = "", *, seed: int) -> Start:
    """Start options for game `name` from the start command's `args` (ValueError if bad)."""
    module, _ = _module(name)
    starter: _Starter = module.start
    return starter(event, args, seed=seed)
