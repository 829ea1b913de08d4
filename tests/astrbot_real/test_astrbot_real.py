"""convo_fsm inside real AstrBot 4.29.3: real AstrMessageEvent objects, real message
components, real handler registration, activation by AstrBot's own filters and handlers
run by its own StarRequestSubStage. Runs in the Python 3.12 venv `.ci/run` builds
(`.venv-astrbot`); the main suite starts it through tests/adapters/test_real_astrbot.py."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from astrbot.core.message.components import At, Plain
from astrbot.core.message.message_event_result import MessageChain
from astrbot.core.pipeline.process_stage.method.star_request import StarRequestSubStage
from astrbot.core.pipeline.process_stage.stage import ProcessStage
from astrbot.core.platform.astr_message_event import AstrMessageEvent
from astrbot.core.platform.astrbot_message import AstrBotMessage, MessageMember
from astrbot.core.platform.message_type import MessageType
from astrbot.core.platform.platform_metadata import PlatformMetadata
from astrbot.core.star.filter.command import CommandFilter
from astrbot.core.star.star import StarMetadata, star_map
from astrbot.core.star.star_handler import star_handlers_registry
from astrbot.core.utils import session_waiter as astrbot_waiter

from convo_fsm import VirtualClock
from convo_fsm.adapters.astrbot import (
    DefaultSessionFilter,
    Runtime,
    SessionController,
    WaiterExists,
    session_waiter,
    set_default_runtime,
)

HERE = Path(__file__).parent
_ids = itertools.count(1)


def load(name: str) -> ModuleType:
    modname = f"convo_fsm_real_plugins.{name}"
    if modname not in sys.modules:
        spec = importlib.util.spec_from_file_location(modname, HERE / "plugins" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    return sys.modules[modname]


plugins = load("idiom_real")
META = PlatformMetadata(name="test", description="convo_fsm tests", id="testbot")


class ChatEvent(AstrMessageEvent):
    """A real AstrMessageEvent whose platform is a list of sent texts."""

    def __init__(self, out: list[tuple[str, str]], *args: Any) -> None:
        super().__init__(*args)
        self.out = out

    async def send(self, message: MessageChain) -> None:
        self.out.append((self.get_sender_id(), message.get_plain_text()))


class Chat:
    """Real events through AstrBot's own handler machinery: the wake prefix handled as
    WakingCheckStage does, handlers activated by their real filters from the real registry
    (priority order), run by the real `StarRequestSubStage` (which stops at a stopped
    event), yielded results sent as RespondStage would; each event in its own task."""

    def __init__(self, *plugin_classes: type) -> None:
        self.clock = VirtualClock()
        self.runtime = Runtime(clock=self.clock)
        set_default_runtime(self.runtime)
        self.out: list[tuple[str, str]] = []
        self.stars = [cls(context=None) for cls in plugin_classes]
        for star in self.stars:
            module = type(star).__module__
            star_map.setdefault(module, StarMetadata(name="convo-fsm-test", module_path=module))
        self.tasks: set[asyncio.Task[None]] = set()

    def event(self, text: str, sender: str = "alice", group: str | None = None,
              components: list[Any] | None = None) -> ChatEvent:
        msg = AstrBotMessage()
        msg.type = MessageType.GROUP_MESSAGE if group else MessageType.FRIEND_MESSAGE
        msg.self_id = "bot"
        msg.session_id = group or sender
        msg.message_id = str(next(_ids))
        msg.sender = MessageMember(user_id=sender, nickname=sender.title())
        msg.message = components if components is not None else [Plain(text)]
        msg.message_str = text
        msg.raw_message = None
        if group:
            msg.group_id = group
        return ChatEvent(self.out, text, msg, META, msg.session_id)

    async def send(self, text: str, sender: str = "alice", group: str | None = None,
                   components: list[Any] | None = None) -> list[str]:
        start = len(self.out)
        task = asyncio.ensure_future(self._pipeline(self.event(text, sender, group, components)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await settle()
        return [text for _, text in self.out[start:]]

    async def advance(self, seconds: float) -> list[str]:
        start = len(self.out)
        await self.clock.advance(seconds)
        await settle()
        return [text for _, text in self.out[start:]]

    async def _pipeline(self, event: ChatEvent) -> None:
        if event.message_str.startswith("/"):  # the wake prefix, as WakingCheckStage strips it
            event.message_str = event.message_str[1:]
            event.is_at_or_wake_command = True
        activated = []
        for star in self.stars:
            names = _names(star)
            for md in star_handlers_registry:
                if md.handler_module_path != type(star).__module__ or md.handler_name not in names:
                    continue
                if all(f.filter(event, CONFIG) for f in md.event_filters):
                    activated.append(dataclasses.replace(
                        md, handler=functools.partial(md.handler, star)))
        event.set_extra("activated_handlers", activated)
        # AstrBot's own ProcessStage: its routing to waiting sessions (where convo_fsm's
        # router sits), then the activated handlers.
        async for _ in process_stage().process(event):
            result = event.get_result()
            if result is not None and result.chain:
                await event.send(result)
            event.clear_result()


def process_stage() -> ProcessStage:
    """AstrBot's ProcessStage without initialize() (which needs a whole AstrBot): its
    handler sub-stage, and the LLM path off."""
    stage = ProcessStage()
    stage.ctx = SimpleNamespace(astrbot_config={"provider_settings": {"enable": False}})  # type: ignore[assignment]
    stage.config = stage.ctx.astrbot_config
    stage.star_request_sub_stage = StarRequestSubStage()
    return stage


CONFIG: dict[str, Any] = {}


def _names(star: Any) -> set[str]:
    """The handler names of this plugin class (one test module holds several plugins)."""
    return {getattr(v, "__name__", "") for c in type(star).__mro__ for v in vars(c).values()}


async def settle() -> None:
    for _ in range(50):  # let the event's task run to its end or into a waiter
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
async def fresh_runtime() -> AsyncIterator[None]:
    yield
    set_default_runtime(None)


async def test_real_idiom_chain_plays_exits_and_times_out() -> None:
    chat = Chat(plugins.IdiomChain)
    assert await chat.send("/idiom-chain") == ["Please send an idiom~"]
    assert await chat.send("horse") == ["The idiom must be four characters~"]
    assert await chat.send("一马当先") == ["Foresight"]
    assert await chat.send("exit") == ["Exited the idiom chain game~"]
    assert len(chat.runtime.engine) == 0
    assert await chat.send("/idiom-chain") == ["Please send an idiom~"]
    assert await chat.advance(59) == []
    assert await chat.advance(2) == ["You timed out!"]
    assert len(chat.runtime.engine) == 0 and not chat.tasks


async def test_real_group_members_per_member_by_default_shared_with_custom_filter() -> None:
    chat = Chat(plugins.IdiomChain)
    await chat.send("/idiom-chain", sender="alice", group="g")
    assert await chat.send("一马当先", sender="bob", group="g") == []  # not Alice's session
    assert await chat.send("一马当先", sender="alice", group="g") == ["Foresight"]
    set_default_runtime(None)

    chat = Chat(plugins.GroupIdiomChain)
    await chat.send("/idiom-chain", sender="alice", group="g")
    assert await chat.send("一马当先", sender="bob", group="g") == ["Foresight"]
    assert await chat.send("exit", sender="bob", group="g") == ["Exited the idiom chain game~"]
    assert len(chat.runtime.engine) == 0


def test_real_astrbot_default_filter_keys_the_group_ours_keys_the_member() -> None:
    chat = Chat()
    alice, bob = chat.event("x", "alice", "g"), chat.event("x", "bob", "g")
    theirs = astrbot_waiter.DefaultSessionFilter()
    assert theirs.filter(alice) == theirs.filter(bob) == "testbot:GroupMessage:g"  # bug 1
    ours = DefaultSessionFilter()
    assert ours.filter(alice) != ours.filter(bob)
    assert ours.filter(chat.event("x", "alice")) == "testbot:FriendMessage:alice"


async def test_real_history_chains_are_deep_copies_of_real_components() -> None:
    chat = Chat()
    histories: list[Any] = []

    @session_waiter(timeout=10, record_history_chains=True)
    async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
        if event.message_str == "done":
            histories.append(controller.get_history_chains())
            controller.stop()

    start = chat.event("/go")
    task = asyncio.ensure_future(waiter(start))
    await settle()
    at = At(qq="42", name="bot")
    await chat.runtime.dispatch(chat.event("hi", components=[at, Plain("hi")]))
    await chat.runtime.dispatch(chat.event("done"))
    assert await task is None
    [history] = histories
    assert [[type(c).__name__ for c in chain] for chain in history] == [["At", "Plain"],
                                                                       ["Plain"]]
    assert history[0][0] == at and history[0][0] is not at


async def test_real_astrbot_session_filter_subclass_is_accepted() -> None:
    class ByGroup(astrbot_waiter.SessionFilter):
        def filter(self, event: AstrMessageEvent) -> str:
            return event.get_group_id() or event.unified_msg_origin

    chat = Chat()
    seen: list[str] = []

    @session_waiter(timeout=10)
    async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
        seen.append(event.get_sender_id())
        controller.stop()

    task = asyncio.ensure_future(waiter(chat.event("/go", "alice", "g"), ByGroup()))
    await settle()
    # A second waiter on the key is refused (AstrBot overwrote the first: bug 2).
    with pytest.raises(WaiterExists):
        await waiter(chat.event("/go", "carol", "g"), ByGroup())
    assert await chat.runtime.dispatch(chat.event("hey", "bob", "g"))
    assert await task is None
    assert seen == ["bob"]


async def test_real_routing_is_registered_with_astrbot_once_and_spec_command_works() -> None:
    from convo_fsm.adapters import astrbot as adapter

    routers = [f for f in astrbot_waiter.FILTERS if getattr(f, "convo_fsm_router", False)]
    assert len(routers) == 1 and astrbot_waiter.FILTERS[0] is routers[0]
    assert astrbot_waiter.USER_SESSIONS[adapter.ROUTER_ID].session_filter is routers[0]
    adapter._install_router()  # a second plugin importing the adapter: still one
    assert sum(getattr(f, "convo_fsm_router", False) for f in astrbot_waiter.FILTERS) == 1
    mds = star_handlers_registry.get_handlers_by_module_name(plugins.__name__)
    by_name = {md.handler_name: md for md in mds}
    assert "convo_fsm_route" not in by_name  # no listener line in the plugin
    quiz = by_name["convo_fsm_quiz"]
    assert [f.command_name for f in quiz.event_filters if isinstance(f, CommandFilter)] == [
        "quiz"]

    chat = Chat(plugins.QuizPlugin)
    assert await chat.send("/quiz", sender="ann", group="g") == ["ann: what is 6 x 7?"]
    assert await chat.send("41", sender="bo", group="g") == []  # per member
    assert await chat.send("41", sender="ann", group="g") == ["No, try again."]
    assert await chat.send("42", sender="ann", group="g") == ["Right!"]
    assert await chat.send("/quiz", sender="ann") == ["ann: what is 6 x 7?"]
    assert await chat.advance(30) == ["Time's up: it was 42."]  # via the starting event
    assert chat.out[-1] == ("ann", "Time's up: it was 42.")
    assert len(chat.runtime.engine) == 0


def test_real_default_key_is_configurable_to_astrbots_origin() -> None:
    from convo_fsm.adapters.astrbot import configure, default_runtime
    from convo_fsm.compat.astrbot import runtime as compat_runtime

    chat = Chat()
    alice, bob = chat.event("x", "alice", "g"), chat.event("x", "bob", "g")
    try:
        set_default_runtime(None)
        configure(default_key="origin")
        assert default_runtime().default_key == "origin"
        ours = DefaultSessionFilter()
        assert ours.filter(alice) == ours.filter(bob) == astrbot_waiter.DefaultSessionFilter(
        ).filter(alice)
        configure(default_key="sender")
        assert ours.filter(alice) != ours.filter(bob)
        with pytest.raises(ValueError, match="default_key"):
            configure(default_key="group")
    finally:
        compat_runtime._default_options.clear()
        set_default_runtime(None)
