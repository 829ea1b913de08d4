"""The games as an AstrBot plugin: `/idiom-chain`, `/guess-number`, `/number-bomb`, `/games`.

Each command takes the game's start options after it (`/guess-number 1-1000 10`,
`/idiom-chain strict`, `/number-bomb 1-50`) and starts the game keyed as the game says
(its `Spec.start`): later messages in that chat go to the game before any other handler.
Bad options are answered with what is wrong; a game already running in the chat is said so.

Two ways to run it:

- In real AstrBot (4.29.3, with `convo-fsm[games]` installed in AstrBot's Python): use this
  file as a plugin's `main.py` (copy it into `data/plugins/convo_fsm_games/`). With `astrbot`
  importable it builds on `astrbot.api` and `convo_fsm.adapters.astrbot`, and routes the
  chat's messages to convo_fsm's sessions first (`route_listener`).
- Without AstrBot, in `convo_fsm.compat.astrbot.PluginHost` (tests, a local bot):
  `host.load(GamesPlugin)`.

Plugin config (optional): `{"seed": N}` makes the games reproducible (game k gets N + k).
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import games
from convo_fsm import Message, SessionExists, Spec, StartError

if TYPE_CHECKING or importlib.util.find_spec("astrbot") is None:
    from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, filter
    from convo_fsm.compat.astrbot.api.star import Context, Star
    from convo_fsm.compat.astrbot.runtime import runtime_for

    REAL_ASTRBOT = False

    async def _start_spec(event: Any, spec: Spec, kind: str, data: dict[str, Any]) -> None:
        await runtime_for(event).start_spec(spec, event, filter=kind, data=data)

    def _route_listener() -> Callable[..., Any]:  # PluginHost routes to sessions itself
        raise RuntimeError("only needed inside real AstrBot")
else:  # inside real AstrBot
    from astrbot.api.event import AstrMessageEvent, filter
    from astrbot.api.star import Context, Star

    from convo_fsm.adapters.astrbot import route_listener as _route_listener
    from convo_fsm.adapters.astrbot import start_spec

    REAL_ASTRBOT = True

    async def _start_spec(event: Any, spec: Spec, kind: str, data: dict[str, Any]) -> None:
        await start_spec(event, spec, filter=kind, data=data)


__all__ = ["REAL_ASTRBOT", "GamesPlugin"]


def _as_message(event: Any) -> Message:
    """The AstrBot event as a `convo_fsm.Message` (what `games.start` reads)."""
    group = str(event.get_group_id() or "") or None
    return Message(str(event.message_str), sender=str(event.get_sender_id()), group=group)


class GamesPlugin(Star):
    """The three games, one command each, plus `/games` to list them."""

    if REAL_ASTRBOT:
        convo_fsm_route = _route_listener()

    def __init__(self, context: Context, config: dict[str, Any] | None = None) -> None:
        super().__init__(context)
        seed = (config or {}).get("seed")
        self._seed = int(seed) if seed is not None else random.SystemRandom().randrange(2**31)
        self._started = 0

    async def _play(self, name: str, event: AstrMessageEvent) -> None:
        event.stop_event()
        message = _as_message(event)
        args = message.text.strip().partition(" ")[2]
        spec = games.load(name)
        try:
            setup = spec.begin(message, args, seed=self._seed + self._started)
        except StartError as exc:
            await event.send(event.plain_result(str(exc)))
            return
        try:
            await _start_spec(event, spec, setup.kind, setup.data)
        except SessionExists:
            await event.send(event.plain_result(f"A {name} game is already running here."))
            return
        self._started += 1

    @filter.command("idiom-chain")
    async def idiom_chain(self, event: AstrMessageEvent) -> None:
        """成语接龙: /idiom-chain [strict] [solo]"""
        await self._play("idiom-chain", event)

    @filter.command("guess-number")
    async def guess_number(self, event: AstrMessageEvent) -> None:
        """Guess the number: /guess-number [LOW-HIGH] [ATTEMPTS]"""
        await self._play("guess-number", event)

    @filter.command("number-bomb")
    async def number_bomb(self, event: AstrMessageEvent) -> None:
        """数字炸弹 (in a group): /number-bomb [LOW-HIGH]"""
        await self._play("number-bomb", event)

    @filter.command("games")
    async def list_games(self, event: AstrMessageEvent) -> None:
        """The games and how to start them."""
        event.stop_event()
        lines = [f"/{name}: {games.DESCRIPTIONS[name]}" for name in games.GAMES]
        await event.send(event.plain_result("\n".join(lines)))
