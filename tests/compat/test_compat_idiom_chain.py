"""Acceptance: the idiom-chain example of AstrBot's session-control page, ported by changing
only its imports, runs in PluginHost as the page promises (issue 4)."""

from __future__ import annotations

import asyncio
from typing import Any

from astrbot_compat_helpers import load_plugin_module

from convo_fsm.compat.astrbot import PluginHost

idiom = load_plugin_module("idiom_chain")


async def test_idiom_chain_plays_answers_and_exits() -> None:
    host = PluginHost()
    host.load(idiom.IdiomChain)
    assert await host.send("/idiom-chain") == ["Please send an idiom~"]
    assert len(host.engine) == 1
    assert await host.send("horse") == ["The idiom must be four characters~"]
    assert await host.send("一马当先") == ["Foresight"]
    assert await host.send("明察秋毫") == ["Foresight"]
    assert await host.send("exit") == ["Exited the idiom chain game~"]
    assert len(host.engine) == 0
    # The session is over: a message is no longer the game's, and nothing answers it.
    assert await host.send("一马当先") == []
    assert host.errors == []
    await host.close()


async def test_idiom_chain_times_out_after_61_silent_seconds() -> None:
    host = PluginHost()
    host.load(idiom.IdiomChain)
    assert await host.send("/idiom-chain") == ["Please send an idiom~"]
    assert await host.advance(59) == []
    assert await host.send("一马当先") == ["Foresight"]  # keep(60, reset_timeout=True)
    assert await host.advance(59) == []
    assert len(host.engine) == 1
    assert await host.advance(2) == ["You timed out!"]
    assert len(host.engine) == 0
    assert await host.advance(120) == []
    await host.close()


async def test_a_wrong_answer_does_not_reset_the_timeout() -> None:
    host = PluginHost()
    host.load(idiom.IdiomChain)
    await host.send("/idiom-chain")
    await host.advance(30)
    assert await host.send("horse") == ["The idiom must be four characters~"]  # no keep()
    assert await host.advance(30) == ["You timed out!"]
    await host.close()


async def test_custom_filter_two_group_members_share_one_session() -> None:
    host = PluginHost()
    host.load(idiom.CustomFilterIdiom)
    assert await host.send("/idiom-chain", sender="alice", group="g1") == [
        "Please send an idiom~"]
    assert await host.send("一马当先", sender="bob", group="g1") == ["Foresight"]
    assert await host.send("先见之明", sender="alice", group="g1") == ["Foresight"]
    assert len(host.engine) == 1
    # Another group and a private chat are not part of it.
    assert await host.send("abc", sender="carol", group="g2") == []
    assert await host.send("abc", sender="bob") == []
    assert await host.send("exit", sender="bob", group="g1") == [
        "Exited the idiom chain game~"]
    assert len(host.engine) == 0
    await host.close()


async def test_default_filter_gives_each_group_member_their_own_session() -> None:
    host = PluginHost()
    host.load(idiom.IdiomChain)
    await host.send("/idiom-chain", sender="alice", group="g1")
    # Bob is not in Alice's session: his message is nobody's and no command.
    assert await host.send("一马当先", sender="bob", group="g1") == []
    assert await host.send("/idiom-chain", sender="bob", group="g1") == [
        "Please send an idiom~"]
    assert len(host.engine) == 2
    assert await host.send("horse", sender="bob", group="g1") == [
        "The idiom must be four characters~"]
    assert await host.send("exit", sender="alice", group="g1") == [
        "Exited the idiom chain game~"]
    assert len(host.engine) == 1
    assert await host.send("一马当先", sender="bob", group="g1") == ["Foresight"]
    await host.close()


async def test_replies_reach_the_chat_they_belong_to() -> None:
    host = PluginHost()
    host.load(idiom.CustomFilterIdiom)
    await host.send("/idiom-chain", sender="alice", group="g1")
    await host.send("一马当先", sender="bob", group="g1")
    origins: list[Any] = [origin for origin, _ in host.sent]
    assert origins == ["local:GroupMessage:g1", "local:GroupMessage:g1"]
    await host.close()


async def test_close_cancels_suspended_handlers_and_ends_their_sessions() -> None:
    host = PluginHost()
    host.load(idiom.IdiomChain)
    for user in ("alice", "bob"):
        await host.send("/idiom-chain", sender=user)
    assert len(host.engine) == 2
    await host.close()
    assert len(host.engine) == 0
    assert host.errors == []  # the handlers were cancelled, not failed
    assert asyncio.all_tasks() == {asyncio.current_task()}
