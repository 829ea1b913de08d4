"""Published-plugin patterns (tests/compat/plugins, AstrBot's own imports, unmodified)
loaded into PluginHost by folder, each walked through its transcript: typed command
parameters and image results, a paged menu with re-dispatch, an admin confirm flow, a file
form, a group game with a custom filter, a content-dependent filter, USER_SESSIONS reach-in.
tests/astrbot_real walks the same transcripts in real AstrBot."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest
from astrbot_transcripts import PATTERNS, PLUGINS, components, transcript

from convo_fsm.compat.astrbot import PluginHost
from convo_fsm.compat.astrbot.core.message import components as Comp


async def walk(host: PluginHost, name: str) -> None:
    for i, step in enumerate(transcript(name)["steps"]):
        if "advance" in step:
            got = await host.advance(step["advance"])
        else:
            event = host.event(step["send"], step["sender"], step.get("group"),
                               sender_name=step["sender"].title(),
                               components=components(step, Comp))
            got = await host.deliver(event)
        assert got == step["reply"], f"{name} step {i}: {step}"


@pytest.mark.parametrize("name", PATTERNS)
async def test_pattern_plugin_unmodified_in_plugin_host(name: str) -> None:
    data = transcript(name)
    async with PluginHost(admins=data.get("admins", ())) as host:
        host.load_folder(PLUGINS / name)
        await walk(host, name)
        assert host.errors == []
        assert len(host.engine) == 0
    # The host left nothing behind: no task, no alias of `astrbot` in sys.modules.
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert not any(m == "astrbot" or m.startswith("astrbot.") for m in sys.modules
                   if sys.modules[m].__name__.startswith("convo_fsm.compat."))


async def test_quiz_replies_carry_components_and_the_config_comes_from_the_schema() -> None:
    async with PluginHost() as host:
        star = host.load_folder(PLUGINS / "quiz_demo", config={"timeout": 5})
        assert star.config["image_base"] == "https://img.example.org/quiz"  # schema default
        assert star.config.timeout == 5  # the test's override, attribute access
        await host.send("/quiz math", sender="ann")
        [reply] = host.replies("ann")
        assert [type(c).__name__ for c in reply.chain] == ["Plain", "Image"]
        assert reply.images[0].file == "https://img.example.org/quiz/math/1.png"
        assert await host.advance(5.5) == ["Time's up!"]
        assert host.metadata[0].name == "quiz_demo"


async def test_data_dir_is_the_hosts_and_scores_are_written_there() -> None:
    async with PluginHost() as host:
        host.load_folder(PLUGINS / "quiz_demo")
        await host.send("/quiz math 1", sender="ann")
        assert await host.send("4", sender="ann") == ["Right! Score: 1/1"]
        scores = host.root_dir / "data" / "plugin_data" / "quiz_demo" / "scores.json"
        assert json.loads(scores.read_text()) == {"ann": 1}
        root = host.root_dir
    assert not root.exists()  # the host's own temporary root is removed on close


@pytest.mark.parametrize("name", PATTERNS)
async def test_a_copy_with_imports_rewritten_gives_the_same_transcript(
        name: str, tmp_path: Path) -> None:
    copy = tmp_path / name
    shutil.copytree(PLUGINS / name, copy)
    main = copy / "main.py"
    main.write_text(main.read_text().replace("from astrbot.", "from convo_fsm.compat.astrbot.")
                    .replace("import astrbot.", "import convo_fsm.compat.astrbot."))
    assert "astrbot." not in main.read_text().replace("convo_fsm.compat.astrbot.", "")
    async with PluginHost(admins=transcript(name).get("admins", ())) as host:
        host.load_folder(copy)
        await walk(host, name)
        assert host.errors == []


async def test_a_module_the_compat_tree_lacks_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "needs_db"
    bad.mkdir()
    (bad / "main.py").write_text("from astrbot.core.db.sqlite import SQLiteDatabase\n")
    async with PluginHost() as host:
        with pytest.raises(ModuleNotFoundError, match=r"astrbot\.core\.db"):
            host.load_folder(bad)


async def test_two_hosts_load_the_same_folder_without_sharing_state() -> None:
    async with PluginHost(admins=["boss"]) as one, PluginHost(admins=["boss"]) as two:
        a = one.load_folder(PLUGINS / "purge_demo")
        b = two.load_folder(PLUGINS / "purge_demo")
        assert type(a) is not type(b)
        await one.send("/purge x", sender="boss")
        assert await one.send("yes", sender="boss") == ["Purged x."]
        assert await two.send("/purged", sender="boss") == ["Purged: nothing"]


async def test_readme_plugin_host_example() -> None:
    """README's PluginHost example, on the quiz pattern plugin."""
    async with PluginHost(admins=["boss"], llm=["Paris"]) as host:
        host.load_folder(PLUGINS / "quiz_demo", config={"timeout": 5})
        assert await host.send("/quiz capitals", sender="alice") == ["Q1: France?[Image]"]
        assert await host.send("paris", sender="alice") == ["Right! Q2: Japan?[Image]"]
        assert await host.send("tokyo", sender="bob", group="g1") == []
        assert await host.advance(6) == ["Time's up!"]
        reply = host.replies("alice")[0]
        assert reply.images[0].file.endswith("/capitals/1.png")
