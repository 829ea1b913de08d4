"""PluginHost as a test kit: the AstrBot API surface plugins use beyond session control
(command groups, listeners, priorities and stop_event, platform and regex filters, hooks
and the plugin lifecycle, Context.send_message, the scripted LLM, config attribute access),
each with AstrBot 4.29.3's behaviour."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import convo_fsm.compat.astrbot.api.message_components as Comp
from convo_fsm.compat.astrbot import PluginHost
from convo_fsm.compat.astrbot.api import AstrBotConfig
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, MessageChain, filter
from convo_fsm.compat.astrbot.api.provider import LLMUnavailable
from convo_fsm.compat.astrbot.api.star import Context, NotOffered, Star


class Calc(Star):
    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.log: list[str] = []

    @filter.command_group("math")
    def math(self) -> None:
        pass

    @math.command("add")
    async def add(self, event: AstrMessageEvent, a: int, b: int) -> Any:
        """adds two numbers"""
        yield event.plain_result(f"{a + b}")

    @math.command("half")
    async def half(self, event: AstrMessageEvent, x: float, show: bool = False) -> Any:
        yield event.plain_result(f"{x / 2}" + (" (halved)" if show else ""))

    @filter.command("say hello", alias={"hi"})
    async def hello(self, event: AstrMessageEvent) -> Any:
        return event.plain_result(f"hello {event.get_sender_name()}")

    @filter.event_message_type(filter.EventMessageType.GROUP_MESSAGE, priority=5)
    async def watch(self, event: AstrMessageEvent) -> None:
        self.log.append(f"watch:{event.message_str}")
        if event.message_str == "secret":
            event.stop_event()

    @filter.event_message_type(filter.EventMessageType.ALL)
    async def after(self, event: AstrMessageEvent) -> None:
        self.log.append(f"after:{event.message_str}")

    @filter.platform_adapter_type(filter.PlatformAdapterType.TELEGRAM)
    @filter.command("tg")
    async def tg_only(self, event: AstrMessageEvent) -> Any:
        yield event.plain_result("telegram!")

    @filter.regex(r"^\d{3}$")
    async def three_digits(self, event: AstrMessageEvent) -> Any:
        yield event.plain_result(f"code {event.message_str}")


async def test_command_groups_parse_typed_parameters_and_show_their_tree() -> None:
    async with PluginHost() as host:
        host.load(Calc)
        assert await host.send("/math add 2 40") == ["42"]
        assert await host.send("/math half 5 yes") == ["2.5 (halved)"]
        assert await host.send("/math half 5") == ["2.5"]
        assert await host.send("/math half 5 maybe") == [  # AstrBot's words, bool included
            "插件 Calc: 参数 show 类型错误。完整参数: x(float),show(bool)=False"]
        [tree] = await host.send("/math")
        assert tree.startswith("插件 Calc: 参数不足。math 指令组下有如下指令，请参考：\nmath\n")
        assert "├── add (a(int),b(int)): adds two numbers" in tree
        assert await host.send("/say hello", sender="ann", sender_name="Ann") == ["hello Ann"]
        assert await host.send("/hi", sender_name="Bo") == ["hello Bo"]
        assert set(host.commands) >= {"math add", "math half", "say hello", "hi"}


async def test_listeners_run_by_priority_and_stop_event_ends_propagation() -> None:
    async with PluginHost() as host:
        calc = host.load(Calc)
        assert isinstance(calc, Calc)
        await host.send("chatter", sender="ann", group="g")
        await host.send("secret", sender="ann", group="g")
        await host.send("psst", sender="ann")  # private: only the ALL listener
        assert calc.log == ["watch:chatter", "after:chatter", "watch:secret", "after:psst"]


async def test_platform_and_regex_filters() -> None:
    async with PluginHost() as host:
        host.load(Calc)
        assert await host.send("/tg") == []
        assert await host.send("/tg", platform="telegram") == ["telegram!"]
        assert await host.send("123") == ["code 123"]  # regex: no wake prefix needed
        assert await host.send("1234") == []


async def test_wake_prefix_is_stripped_and_configurable() -> None:
    seen: list[str] = []

    class Echo(Star):
        @filter.command("echo")
        async def echo(self, event: AstrMessageEvent, rest: str = "") -> None:
            seen.append(event.message_str)

    async with PluginHost(wake_prefix=["!"]) as host:
        host.load(Echo)
        await host.send("!echo x", group="g")
        await host.send("/echo y", group="g")  # not this bot's prefix: a group stays asleep
        await host.send("echo z")  # a private chat is always awake
    assert seen == ["echo x", "echo z"]


async def test_lifecycle_hooks_send_message_and_config() -> None:
    calls: list[str] = []

    class Life(Star):
        def __init__(self, context: Context, config: AstrBotConfig) -> None:
            super().__init__(context)
            self.config = config

        async def initialize(self) -> None:
            calls.append(f"initialize:{self.config.greeting}")

        async def terminate(self) -> None:
            calls.append("terminate")

        @filter.on_astrbot_loaded()
        async def loaded(self) -> None:
            calls.append("astrbot_loaded")

        @filter.on_plugin_loaded()
        async def plugin_loaded(self, metadata: Any) -> None:
            calls.append(f"plugin_loaded:{metadata.name}")

        @filter.command("broadcast")
        async def broadcast(self, event: AstrMessageEvent, where: str) -> Any:
            await self.context.send_message(f"local:GroupMessage:{where}",
                                            MessageChain().message(self.config["greeting"]))
            yield event.plain_result("sent")

    host = PluginHost()
    host.load(Life, {"greeting": "hi all"}, schema={"greeting": {"type": "string"},
                                                    "n": {"type": "int"}})
    assert calls == []
    async with host:
        assert calls == ["initialize:hi all", "astrbot_loaded", "plugin_loaded:Life"]
        # The proactive message has no cause in flight: the send reports it too.
        assert await host.send("/broadcast g7") == ["hi all", "sent"]
        assert [m.text for m in host.replies(group="g7")] == ["hi all"]
        assert host.plugins[0].config["n"] == 0  # the schema's type default
    assert calls[-1] == "terminate"


async def test_scripted_llm_and_the_error_naming_the_call_without_one() -> None:
    class Ask(Star):
        @filter.command("ask")
        async def ask(self, event: AstrMessageEvent, q: str) -> Any:
            provider = self.context.get_using_provider(event.unified_msg_origin)
            answer = await provider.text_chat(prompt=q, session_id=event.unified_msg_origin)
            yield event.plain_result(answer.completion_text)

        @filter.command("gen")
        async def gen(self, event: AstrMessageEvent) -> Any:
            pid = await self.context.get_current_chat_provider_id(event.unified_msg_origin)
            r = await self.context.llm_generate(chat_provider_id=pid, prompt="poem")
            yield event.plain_result(r.completion_text)

    async with PluginHost(llm=lambda req: f"answer to {req.prompt}") as host:
        host.load(Ask)
        assert await host.send("/ask capital?") == ["answer to capital?"]
        assert await host.send("/gen") == ["answer to poem"]
        assert host.llm is not None and [r.prompt for r in host.llm.requests] == [  # type: ignore[attr-defined]
            "capital?", "poem"]
    async with PluginHost() as host:
        host.load(Ask)
        [reply] = await host.send("/ask x")
        assert "provider.text_chat(): no LLM provider" in reply  # AstrBot's error reply
        assert isinstance(host.errors[0], LLMUnavailable)
        assert not host.plugins[0].context.get_using_provider()


async def test_a_handler_yielding_request_llm_gets_the_scripted_answer() -> None:
    class Chat(Star):
        @filter.command("talk")
        async def talk(self, event: AstrMessageEvent, text: str) -> Any:
            yield event.request_llm(prompt=text, system_prompt="be brief")

    async with PluginHost(llm=["first", "second"]) as host:
        host.load(Chat)
        assert await host.send("/talk hi") == ["first"]
        assert await host.send("/talk again", sender="bo") == ["second"]
        request = host.llm.requests[0]  # type: ignore[union-attr]
        assert (request.prompt, request.system_prompt) == ("hi", "be brief")
        [error] = await host.send("/talk more")  # the script has run out: named
        assert "no answer left for 'more'" in error


async def test_what_needs_a_real_astrbot_is_refused_by_name() -> None:
    class Db(Star):
        @filter.command("db")
        async def db(self, event: AstrMessageEvent) -> Any:
            self.context.get_db()
            yield event.plain_result("unreachable")

    async with PluginHost() as host:
        host.load(Db)
        [reply] = await host.send("/db")
        assert "Context.get_db is not offered" in reply
        assert isinstance(host.errors[0], NotOffered)


async def test_event_members_plugins_read() -> None:
    async with PluginHost(admins=["boss"]) as host:
        seen: dict[str, Any] = {}

        class Peek(Star):
            @filter.command("peek")
            async def peek(self, event: AstrMessageEvent) -> Any:
                seen.update(session=str(event.session), umo=event.unified_msg_origin,
                            group=event.message_obj.group_id,
                            sender=event.message_obj.sender.user_id,
                            self_id=event.get_self_id(), sid=event.get_session_id(),
                            admin=event.is_admin(), woken=event.is_at_or_wake_command,
                            platform=event.get_platform_name())
                event.set_extra("k", 1)
                seen["extra"] = event.get_extra("k")
                yield event.plain_result("ok")
                await self.context.send_message(event.session, MessageChain().message("hey"))

        host.load(Peek)
        assert await host.send("/peek", sender="boss", group="g9") == ["ok", "hey"]
        assert seen == {"session": "local:GroupMessage:g9", "umo": "local:GroupMessage:g9",
                        "group": "g9", "sender": "boss", "self_id": "bot", "sid": "g9",
                        "admin": True, "woken": True, "platform": "local", "extra": 1}


async def test_platform_clients_are_refused_by_name() -> None:
    async with PluginHost() as host:
        event = host.event("x")
        with pytest.raises(NotOffered, match=r"AstrMessageEvent\.bot .*AiocqhttpMessageEvent"):
            event.bot.send_group_msg(group_id=1, message="hi")  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            event.no_such_member  # type: ignore[attr-defined]  # noqa: B018


async def test_replies_keep_components_and_an_at_of_the_bot_wakes_a_group() -> None:
    class Pic(Star):
        @filter.command("pic")
        async def pic(self, event: AstrMessageEvent) -> Any:
            yield event.image_result("https://img.example.org/cat.png")
            yield event.chain_result([Comp.At(qq=event.get_sender_id(), name="you"),
                                      Comp.Plain(" here")])

    async with PluginHost() as host:
        host.load(Pic)
        woke = host.event("pic", "ann", "g", components=[Comp.At(qq="bot"), Comp.Plain("pic")])
        assert await host.deliver(woke) == ["[Image]", "@you  here"]
        first, second = host.replies("ann")
        assert first.images[0].file == "https://img.example.org/cat.png"
        assert isinstance(second.chain[0], Comp.At)


async def test_closing_leaves_no_task_even_with_a_waiter_in_create_task() -> None:
    from convo_fsm.compat.astrbot.core.utils.session_waiter import session_waiter

    class Bg(Star):
        @filter.command("bg")
        async def bg(self, event: AstrMessageEvent) -> None:
            @session_waiter(timeout=600)
            async def w(controller: Any, ev: AstrMessageEvent) -> None:
                pass

            await asyncio.create_task(w(event))

    class Boom(Star):
        @filter.command("boom")
        async def boom(self, event: AstrMessageEvent) -> None:
            raise RuntimeError("plugin bug")

    loop = asyncio.get_running_loop()
    unretrieved: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: unretrieved.append(ctx))
    try:
        async with PluginHost() as host:
            host.load(Bg)
            host.load(Boom)
            assert await host.send("/bg") == []
            assert len(host.engine) == 1
            [reply] = await host.send("/boom", sender="bob")
            assert reply.endswith("boom 时出现异常：plugin bug")
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        del host
        gc.collect()
        await asyncio.sleep(0)
        assert unretrieved == []  # no "exception was never retrieved" left behind
    finally:
        loop.set_exception_handler(None)


def test_load_refuses_what_is_not_a_plugin() -> None:
    with pytest.raises(TypeError, match="Star subclass"):
        PluginHost().load(object)  # type: ignore[arg-type]


async def test_render_kv_store_data_dir_and_llm_tools() -> None:
    import json
    from pathlib import Path

    from convo_fsm.compat.astrbot.api.star import StarTools

    class Card(Star):
        @filter.llm_tool(name="weather")
        async def weather(self, event: AstrMessageEvent, city: str) -> str:
            return "sunny"

        @filter.command("card")
        async def card(self, event: AstrMessageEvent, who: str) -> Any:
            count = await self.get_kv_data("count", 0) + 1
            await self.put_kv_data("count", count)
            url = await self.html_render("<b>{{ who }}</b>", {"who": who})
            (StarTools.get_data_dir() / "last.txt").write_text(who)
            yield event.image_result(url)
            yield event.plain_result(f"card {count}")

    async with PluginHost() as host:
        host.load(Card)
        assert await host.send("/card ann") == ["[Image]", "card 1"]
        assert await host.send("/card bo") == ["[Image]", "card 2"]
        image = host.replies()[-2].images[0]
        rendered = json.loads(Path(image.path).read_text("utf-8"))
        assert rendered == {"data": {"who": "bo"}, "html": "<b>{{ who }}</b>"}
        assert (host.root_dir / "data" / "plugin_data" / "Card" / "last.txt").read_text() == "bo"
        assert host.llm_tools == ["weather"]
        text_image = await host.plugins[0].text_to_image("hello")
        assert json.loads(Path(text_image).read_text("utf-8"))["text"] == "hello"


def test_components_and_chains_behave_as_astrbots() -> None:
    import base64
    import copy

    from convo_fsm.compat.astrbot.api.event import MessageEventResult

    img = Comp.Image.fromBytes(b"\x89PNG")
    assert img.file == "base64://" + base64.b64encode(b"\x89PNG").decode()
    local = Comp.Image.fromFileSystem("/tmp/x.png")
    assert local.file == "file:///tmp/x.png" and local.path == "/tmp/x.png"
    with pytest.raises(ValueError, match="not a valid url"):
        Comp.Image.fromURL("ftp://x")
    video, record = Comp.Video.fromURL("https://v.example/a.mp4"), Comp.Record(file="a.wav")
    reply = Comp.Reply(id="9", sender_id="bot")
    chain = [Comp.Plain("hi "), Comp.At(qq="7", name="ann"), img, video, record, reply,
             Comp.File(name="a.txt", file="/tmp/a.txt")]
    assert copy.deepcopy(chain) == chain and copy.deepcopy(chain)[0] is not chain[0]
    assert Comp.render_chain(chain) == "hi @ann [Image][Video][Record][File a.txt]"
    result = MessageEventResult().message("a").at("bo", 8).message("b").url_image(
        "https://i.example/c.png")
    assert result.get_plain_text() == "a b"
    assert result.get_plain_text(with_other_comps_mark=True) == "a [At] b [Image]"
    assert [c.toDict()["type"] for c in result.chain] == ["text", "at", "text", "image"]
    assert result.chain[1].toDict() == {"type": "at", "data": {"qq": "8"}}
    with pytest.raises(ValueError, match="needs qq"):
        Comp.At(name="nobody")


async def test_a_plugins_hourly_background_job_does_not_hold_up_sends() -> None:
    ticks: list[int] = []

    class Daily(Star):
        async def initialize(self) -> None:
            async def job() -> None:
                while True:
                    await asyncio.sleep(3600)  # real time: a daily push, say
                    ticks.append(1)

            self.context.register_task(job(), "daily push")

        @filter.command("wait")
        async def wait(self, event: AstrMessageEvent) -> Any:
            from convo_fsm.compat.astrbot.core.utils.session_waiter import session_waiter

            async def answer(controller: Any, ev: AstrMessageEvent) -> None:
                controller.stop()

            yield event.plain_result("waiting")
            await asyncio.create_task(session_waiter(timeout=60)(answer)(event))
            yield event.plain_result("answered")

    async with PluginHost() as host:
        host.load(Daily)
        # The handler waits in its own task (the host is not told); the job's hour must
        # not be waited for (that would stall this send until pytest's timeout).
        assert await host.send("/wait") == ["waiting"]
        assert await host.send("yes") == ["answered"]
        assert ticks == [] and len(host._tasks) == 1  # the job, still waiting
    assert ticks == []
