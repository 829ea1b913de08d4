"""The pattern plugins of tests/compat/plugins in real AstrBot 4.29.3, through its own
pipeline stages (WakingCheckStage: wake prefix, admins, filters, command parameters, its
replies; ProcessStage: its routing to waiting sessions, then the handlers; a respond step
as its scheduler runs it), each walked through the same transcript as in PluginHost:

- "adapter": the plugin with ONE import changed (`from astrbot.core.utils.session_waiter
  import` -> `from convo_fsm.adapters.astrbot import`), nothing else: the replies must be
  the transcript's;
- "astrbot": the plugin unmodified, on AstrBot's own waiter: the replies must be the
  transcript's, except the steps marked `astrbot_reply` (AstrBot's documented bugs, each
  with its reason).

Time is virtual in both: the loop's clock (AstrBot's waiter times with it) and convo_fsm's
VirtualClock advance together."""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import itertools
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from astrbot.core.config.astrbot_config import AstrBotConfig
from astrbot.core.message import components as RealComp
from astrbot.core.message.message_event_result import MessageChain
from astrbot.core.pipeline.process_stage.method.star_request import StarRequestSubStage
from astrbot.core.pipeline.process_stage.stage import ProcessStage
from astrbot.core.pipeline.waking_check.stage import WakingCheckStage
from astrbot.core.platform.astr_message_event import AstrMessageEvent
from astrbot.core.platform.astrbot_message import AstrBotMessage, MessageMember
from astrbot.core.platform.message_type import MessageType
from astrbot.core.platform.platform_metadata import PlatformMetadata
from astrbot.core.star.session_plugin_manager import SessionPluginManager
from astrbot.core.star.star import star_map
from astrbot.core.star.star_handler import star_handlers_registry
from astrbot.core.star.star_tools import StarTools
from astrbot.core.utils import session_waiter as sw

from convo_fsm import VirtualClock
from convo_fsm.adapters.astrbot import Runtime, set_default_runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from astrbot_transcripts import PATTERNS, PLUGINS, components, render, transcript

META = PlatformMetadata(name="aiocqhttp", description="convo_fsm tests", id="testbot")
ONE_IMPORT = ("from astrbot.core.utils.session_waiter import",
              "from convo_fsm.adapters.astrbot import")
REAL_USER_SESSIONS, REAL_FILTERS = sw.USER_SESSIONS, sw.FILTERS  # AstrBot's own objects
_ids = itertools.count(1)
_loads = itertools.count(1)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock a test moves forward (AstrBot's waiter times its
    sessions with `asyncio.wait_for`, i.e. with this clock)."""

    offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


class ChatEvent(AstrMessageEvent):
    def __init__(self, world: World, *args: Any) -> None:
        super().__init__(*args)
        self.world = world

    async def send(self, message: MessageChain) -> None:
        self._has_send_oper = True
        self.world.out.append(render(message.chain))


class World:
    """One plugin in real AstrBot's stages, fed messages as a platform would."""

    def __init__(self, name: str, mode: str, tmp: Path, admins: list[str],
                 after_load: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        assert isinstance(self.loop, VirtualTimeLoop)
        from convo_fsm.compat.astrbot import runtime as compat_runtime

        self.clock = VirtualClock()
        self.runtime = Runtime(clock=self.clock, **compat_runtime._default_options)
        set_default_runtime(self.runtime)
        self.out: list[str] = []
        self.queue: asyncio.Queue[AstrMessageEvent] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        module = load_plugin(name, mode, tmp)
        if after_load is not None:
            after_load()  # (the zero-change plugin loaded after this one)
        self.plugin_name = _metadata_name(PLUGINS / name)
        meta = self.meta = star_map[module.__name__]
        meta.name = self.plugin_name
        meta.activated = True
        self.config = {
            "platform_settings": {"no_permission_reply": True,
                                  "friend_message_needs_wake_prefix": False},
            "admins_id": admins, "wake_prefix": ["/"], "plugin_set": [self.plugin_name],
            "disable_builtin_commands": True,
            "provider_settings": {"enable": False, "prompt_prefix": "", "identifier": False},
        }
        context = SimpleNamespace(get_event_queue=lambda: self.queue,
                                  get_config=lambda umo=None: self.config,
                                  send_message=self.send_message)
        StarTools.initialize(context)  # type: ignore[arg-type]
        cls = meta.star_cls_type
        schema_file = PLUGINS / name / "_conf_schema.json"
        if schema_file.is_file():
            conf = AstrBotConfig(config_path=str(tmp / f"{name}_{mode}_config.json"),
                                 schema=json.loads(schema_file.read_text("utf-8")))
            self.star = cls(context=context, config=conf)
        else:
            self.star = cls(context=context)
        meta.star_cls = self.star
        for md in star_handlers_registry.get_handlers_by_module_name(module.__name__):
            md.handler = functools.partial(md.handler, self.star)  # as AstrBot binds them
        self.waking = WakingCheckStage()
        self.process = ProcessStage()
        self.consumer = self.loop.create_task(self._consume())

    async def start(self) -> None:
        await self.waking.initialize(SimpleNamespace(astrbot_config=self.config,
                                                     db_helper=None,
                                                     astrbot_config_id="default"))
        self.waking._umo_auto_name_recorder = SimpleNamespace(schedule=lambda e: None)
        self.process.ctx = SimpleNamespace(astrbot_config=self.config)  # type: ignore[assignment]
        self.process.config = self.config  # type: ignore[assignment]
        self.process.star_request_sub_stage = StarRequestSubStage()

    async def send_message(self, session: Any, chain: MessageChain) -> bool:
        self.out.append(render(chain.chain))
        return True

    def event(self, step: dict[str, Any]) -> ChatEvent:
        sender, group, text = step["sender"], step.get("group"), step["send"]
        msg = AstrBotMessage()
        msg.type = MessageType.GROUP_MESSAGE if group else MessageType.FRIEND_MESSAGE
        msg.self_id = "bot"
        msg.session_id = group or sender
        msg.message_id = str(next(_ids))
        msg.sender = MessageMember(user_id=sender, nickname=sender.title())
        msg.message = components(step, RealComp) or [RealComp.Plain(text)]
        msg.message_str = text
        msg.raw_message = None
        if group:
            msg.group_id = group
        return ChatEvent(self, text, msg, META, msg.session_id)

    async def _consume(self) -> None:
        while True:
            self._spawn(await self.queue.get())

    def _spawn(self, event: AstrMessageEvent) -> None:
        task = self.loop.create_task(self._pipeline(event))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _pipeline(self, event: AstrMessageEvent) -> None:
        await self.waking.process(event)  # type: ignore[misc]
        if event.is_stopped():
            return
        async for _ in self.process.process(event):  # the scheduler's onion, as AstrBot's
            if event.is_stopped():
                break
            result = event.get_result()  # the respond stage
            if result is not None and result.chain:
                await event.send(result.derive(result.chain))
            event.clear_result()
            if event.is_stopped():
                break

    async def settle(self) -> None:
        """Run until nothing is ready and no timer is due (bounded)."""
        loop = self.loop
        for _ in range(10_000):
            await asyncio.sleep(0)
            due = any(not h.cancelled() and h.when() <= loop.time()
                      for h in loop._scheduled)  # type: ignore[attr-defined]
            if not loop._ready and not due:  # type: ignore[attr-defined]
                return
        raise AssertionError("the loop never settled")

    async def step(self, step: dict[str, Any]) -> list[str]:
        start = len(self.out)
        if "advance" in step:
            self.loop.offset += step["advance"]
            await self.clock.advance(step["advance"])
        else:
            self._spawn(self.event(step))
        await self.settle()
        return self.out[start:]

    async def close(self) -> None:
        self.consumer.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(self.consumer, *self.tasks, return_exceptions=True)
        self.meta.activated = False  # a later World loads the same plugin afresh
        await self.runtime.engine.close()
        for key in [k for k, v in REAL_USER_SESSIONS.items()
                    if not getattr(v, "convo_fsm_router", False)]:
            del REAL_USER_SESSIONS[key]
        REAL_FILTERS[:] = [f for f in REAL_FILTERS if getattr(f, "convo_fsm_router", False)]
        set_default_runtime(None)


def load_plugin(name: str, mode: str, tmp: Path) -> ModuleType:
    """The plugin folder as a package of its own; in "adapter" mode with its one
    session_waiter import changed (and nothing else)."""
    folder = tmp / f"{name}_{mode}"
    shutil.copytree(PLUGINS / name, folder)
    if mode == "adapter":
        main = folder / "main.py"
        source = main.read_text("utf-8")
        assert source.count(ONE_IMPORT[0]) == 1
        main.write_text(source.replace(*ONE_IMPORT), "utf-8")
    package = f"convo_fsm_real_patterns_{name}_{mode}_{next(_loads)}"
    spec = importlib.util.spec_from_loader(package, loader=None, is_package=True)
    assert spec is not None
    spec.submodule_search_locations = [str(folder)]
    sys.modules[package] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{package}.main")


def _metadata_name(folder: Path) -> str:
    for line in (folder / "metadata.yaml").read_text("utf-8").splitlines() \
            if (folder / "metadata.yaml").is_file() else ():
        key, _, value = line.partition(":")
        if key.strip() == "name":
            return value.strip()
    return folder.name


@pytest.fixture
def virtual_loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualTimeLoop]:
    loop = VirtualTimeLoop()
    # AstrBot's waiter stamps keep() with time.time(): the same virtual clock.
    monkeypatch.setattr(sw, "time", SimpleNamespace(time=loop.time))

    async def every_handler(event: Any, handlers: list[Any]) -> list[Any]:
        return handlers  # (per-chat plugin switches live in AstrBot's database)

    monkeypatch.setattr(SessionPluginManager, "filter_handlers_by_session",
                        staticmethod(every_handler))
    yield loop
    loop.close()


def walk(loop: VirtualTimeLoop, name: str, mode: str, tmp: Path,
         after_load: Any = None) -> list[tuple[int, Any, Any]]:
    """Run the transcript; the (step, expected, got) of every step that differs."""
    data = transcript(name)

    async def scenario() -> list[tuple[int, Any, Any]]:
        world = World(name, mode, tmp, list(data.get("admins", ())), after_load)
        await world.start()
        wrong = []
        try:
            for i, step in enumerate(data["steps"]):
                want = step["reply"] if mode != "astrbot" else step.get("astrbot_reply",
                                                                          step["reply"])
                got = await world.step(step)
                if got != want:
                    wrong.append((i, want, got))
        finally:
            await world.close()
        return wrong

    return loop.run_until_complete(scenario())


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_pattern_with_one_import_changed_gives_the_transcript(
        name: str, virtual_loop: VirtualTimeLoop, tmp_path: Path) -> None:
    assert walk(virtual_loop, name, "adapter", tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_pattern_unmodified_after_install_runs_on_convo_fsm(
        name: str, virtual_loop: VirtualTimeLoop, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero-change mode: `install()` before the plugin is imported."""
    from convo_fsm.adapters import astrbot as adapter
    from convo_fsm.compat.astrbot import runtime as compat_runtime

    for attr in adapter._ZERO_CHANGE:  # restored after the test
        monkeypatch.setattr(sw, attr, getattr(sw, attr))
    monkeypatch.setattr(compat_runtime, "_default_options", {})
    adapter.install()
    assert sw.session_waiter is adapter.session_waiter
    assert walk(virtual_loop, name, "zero", tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_pattern_loaded_before_the_zero_change_plugin_runs_on_convo_fsm(
        name: str, virtual_loop: VirtualTimeLoop, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Zero-change mode, the plugin imported first: the zero-change plugin (as
    write_zero_change_plugin writes it) rebinds its names when it loads."""
    from convo_fsm.adapters import astrbot as adapter
    from convo_fsm.compat.astrbot import runtime as compat_runtime

    for attr in adapter._ZERO_CHANGE:
        monkeypatch.setattr(sw, attr, getattr(sw, attr))
    monkeypatch.setattr(compat_runtime, "_default_options", {})
    folder = adapter.write_zero_change_plugin(tmp_path / "data" / "plugins")
    assert sorted(p.name for p in folder.iterdir()) == ["main.py", "metadata.yaml"]

    def load_zero_change_plugin() -> None:
        spec = importlib.util.spec_from_file_location(
            f"convo_fsm_zero_change_{next(_loads)}", folder / "main.py")
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        assert sw.session_waiter is adapter.session_waiter

    assert walk(virtual_loop, name, "late", tmp_path, load_zero_change_plugin) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_pattern_on_astrbots_own_waiter_gives_the_transcript_but_its_bugs(
        name: str, virtual_loop: VirtualTimeLoop, tmp_path: Path) -> None:
    assert walk(virtual_loop, name, "astrbot", tmp_path) == []


SLOW_PLUGIN = '''
import asyncio

from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.utils.session_waiter import SessionController, session_waiter


@register("slow_demo", "convo_fsm tests", "A handler that takes its time", "1.0.0")
class SlowDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.command("play")
    async def play(self, event: AstrMessageEvent):
        @session_waiter(timeout=10)
        async def w(controller: SessionController, ev: AstrMessageEvent):
            if ev.message_str == "slow":
                await asyncio.sleep(3600)
            controller.keep(10, reset_timeout=True)

        try:
            await w(event)
        except TimeoutError:
            yield event.plain_result("timed out")
        finally:
            event.stop_event()

    @filter.command("hello")
    async def hello(self, event: AstrMessageEvent):
        yield event.plain_result("hello")
'''


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["adapter", "astrbot"])
def test_a_message_queued_for_a_session_that_times_out_is_handed_back(
        mode: str, virtual_loop: VirtualTimeLoop, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """convo_fsm: the queued /hello runs through AstrBot's event queue again, and the
    timeout cancels the handler; AstrBot's own waiter swallows it (and lets it run on)."""
    folder = tmp_path / "plugins" / "slow_demo"
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(SLOW_PLUGIN, "utf-8")
    (folder / "metadata.yaml").write_text("name: slow_demo\n", "utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PLUGINS", tmp_path / "plugins")

    async def scenario() -> list[list[str]]:
        world = World("slow_demo", mode, tmp_path, [])
        await world.start()
        try:
            steps = [{"send": "/play", "sender": "ann"}, {"send": "slow", "sender": "ann"},
                     {"send": "/hello", "sender": "ann"}, {"advance": 11}]
            return [await world.step(s) for s in steps]
        finally:
            await world.close()

    got = virtual_loop.run_until_complete(scenario())
    if mode == "adapter":
        assert got == [[], [], [], ["timed out", "hello"]]
    else:
        assert got == [[], [], [], ["timed out"]]  # /hello is lost


EDGE_PLUGIN = '''
from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.star.filter.command import GreedyStr


@register("edge_demo", "convo_fsm tests", "Pipeline edge cases", "1.0.0")
class EdgeDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.command("stopres")
    async def stopres(self, event: AstrMessageEvent):
        yield event.plain_result("a").stop_event()
        yield event.plain_result("b")

    @filter.command("stopfirst")
    async def stopfirst(self, event: AstrMessageEvent):
        event.stop_event()
        yield event.plain_result("c")

    @filter.command("both", priority=10)
    async def both_high(self, event: AstrMessageEvent, mode: str = "go"):
        yield event.plain_result("high")
        if mode == "stop":
            event.stop_event()

    @filter.command("both")
    async def both_low(self, event: AstrMessageEvent, mode: str = "go"):
        yield event.plain_result("low")

    @filter.command("boom")
    async def boom(self, event: AstrMessageEvent):
        raise ValueError("bad thing")
        yield

    @filter.command("echo")
    async def echo(self, event: AstrMessageEvent, words: GreedyStr):
        yield event.plain_result(f"[{words}]")

    @filter.permission_type(filter.PermissionType.ADMIN, raise_error=False)
    @filter.command("quiet")
    async def quiet(self, event: AstrMessageEvent):
        yield event.plain_result("admin only")

    @filter.event_message_type(filter.EventMessageType.ALL, priority=-1)
    async def seen(self, event: AstrMessageEvent):
        if event.message_str == "count":
            yield event.plain_result("listener")

    @filter.command("count")
    async def count(self, event: AstrMessageEvent, n: int = 3):
        return event.plain_result(f"count {n}")
'''

EDGE_STEPS = [{"send": t, "sender": s, "group": g} for t, s, g in [
    ("/stopres", "ann", None), ("/stopfirst", "ann", None), ("/both", "ann", None),
    ("/both stop", "ann", None), ("/boom", "ann", None), ("/echo  a   b c ", "ann", None),
    ("/quiet", "ann", None), ("/quiet", "boss", None), ("/count", "ann", None),
    ("/count 7", "ann", "g"), ("count", "ann", "g"), ("count", "ann", None)]]


@pytest.mark.slow
def test_pipeline_edge_cases_give_plugin_host_the_same_replies_as_real_astrbot(
        virtual_loop: VirtualTimeLoop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same unmodified folder in real AstrBot's stages and in PluginHost (its import
    hook binds it to the compat tree even here, where AstrBot is installed)."""
    from convo_fsm.compat.astrbot import PluginHost

    folder = tmp_path / "plugins" / "edge_demo"
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(EDGE_PLUGIN, "utf-8")
    (folder / "metadata.yaml").write_text("name: edge_demo\n", "utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PLUGINS", tmp_path / "plugins")

    async def real() -> list[list[str]]:
        world = World("edge_demo", "astrbot", tmp_path, ["boss"])
        await world.start()
        try:
            return [await world.step(s) for s in EDGE_STEPS]
        finally:
            await world.close()

    async def host() -> list[list[str]]:
        async with PluginHost(admins=["boss"]) as h:
            star = h.load_folder(folder)
            assert type(star).__module__.startswith("convo_fsm_plugins.")
            assert "convo_fsm.compat" in type(star).__mro__[1].__module__
            return [await h.send(s["send"], s["sender"], s.get("group")) for s in EDGE_STEPS]

    theirs = virtual_loop.run_until_complete(real())
    ours = virtual_loop.run_until_complete(host())
    assert ours == theirs, (ours, theirs)
    assert sum(map(len, ours)) >= 8, ours  # not vacuous: most steps answer
    # (What they agree on, for the record: a result yielded already stopped, or after
    # stop_event(), is never sent; priorities order handlers; AstrBot's error reply.)
    assert ours[0] == [] and ours[2] == ["high", "low"] and ours[3] == ["high"]
    assert sys.modules["astrbot.core.utils.session_waiter"] is sw  # real AstrBot untouched
