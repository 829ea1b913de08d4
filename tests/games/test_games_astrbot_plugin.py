"""The games as an AstrBot plugin, run in convo_fsm.compat.astrbot.PluginHost."""

from __future__ import annotations

import re

import games
from convo_fsm.compat.astrbot import PluginHost
from games.astrbot_plugin import REAL_ASTRBOT, GamesPlugin


async def test_the_plugin_offers_every_game_and_plays_them_in_a_chat() -> None:
    assert not REAL_ASTRBOT  # this venv has no astrbot: the compat API is used
    host = PluginHost()
    host.load(GamesPlugin, {"seed": 5})
    assert set(games.GAMES) <= set(host.commands)
    listing = await host.send("/games", sender="ann")
    assert all(f"/{name}: " in listing[0] for name in games.GAMES)

    # guess-number, per member: options, bad input, the reminder and the timeout.
    said = await host.send("/guess-number 1-10 3", sender="ann", group="g")
    assert said == ["I'm thinking of a number from 1 to 10. You have 3 attempts and 60 s per "
                    "guess."]
    assert await host.send("abc", sender="ann", group="g") == [
        "'abc' is not a number: send a whole number from 1 to 10 (no attempt used)."]
    assert await host.send("abc", sender="bob", group="g") == []  # not bob's game
    assert await host.advance(30) == ["Still there? 30 s left to guess (3 attempts left)."]
    over = await host.advance(30)
    assert len(over) == 1 and over[0].startswith("Time's up: the number was ")

    # Bad options are answered, nothing starts.
    assert await host.send("/guess-number 9-1", sender="ann") == [
        "Cannot start guess-number: range '9-1' must have LOW < HIGH and span at most "
        "1000000000000 (arguments: [LOW-HIGH] [ATTEMPTS])"]
    assert await host.send("/number-bomb", sender="ann") == [
        "Cannot start number-bomb: it is a group game: start it in a group "
        "(arguments: [LOW-HIGH])"]
    assert len(host.engine) == 0

    # number-bomb, per group: a lobby, a second player, turns.
    said = await host.send("/number-bomb 1-10", sender="ann", group="g")
    assert said[0].startswith("数字炸弹! ann starts a number bomb (1-10).")
    assert await host.send("/number-bomb", sender="bob", group="g") == [
        "A number-bomb game is already running here."]
    assert await host.send("join", sender="bob", group="g") == ["bob joins. Players: ann, bob."]
    said = await host.send("go", sender="ann", group="g")
    assert said[0].startswith("The bomb is set somewhere in 1-10. Order: ann, bob.")
    assert await host.send("3", sender="bob", group="g") == ["bob: not your turn, it is ann's."]
    assert await host.send("exit", sender="bob", group="g") == [
        "Only ann (the host) can do that."]
    said = await host.send("exit", sender="ann", group="g")
    assert len(said) == 1
    assert re.fullmatch(r"Number bomb ended by the host\. The bomb was \d+\.", said[0])

    # idiom-chain, the group as a team.
    said = await host.send("/idiom-chain strict", sender="cat", group="h")
    assert re.match(r"成语接龙! I start: \w{4}\. Your idiom must start with 「\w」\.", said[0])
    assert await host.send("hint", sender="dan", group="h") != []  # a team: dan may ask
    assert await host.send("exit", sender="dan", group="h") == ["Bye. Score: 0 idioms."]
    assert len(host.engine) == 0
    await host.close()
