"""`PluginHost`: runs AstrBot plugins with no AstrBot installed: a test kit.

    async with PluginHost(admins=["boss"], llm=["Paris"]) as host:
        host.load_folder("path/to/astrbot_plugin_quiz")     # unmodified: `astrbot.*` imports
        await host.send("/quiz capitals", sender="alice")    # -> ["Question 1: ..."]
        await host.send("Paris", sender="alice", group="g1")
        await host.advance(61)                               # virtual time: timeouts fire
        host.replies("alice")[-1].chain                      # the components sent

A message goes through what AstrBot 4.29.3's pipeline does with it:
1. waking: the text is stripped; senders in `admins` get the admin role; a wake prefix
   (`/` by default) is removed and wakes the bot, as do an @ of the bot and private chats;
   every message handler's filters are checked in priority order (commands parse their
   parameters by signature; a filter that raises is answered `插件 <name>: <error>`; a
   failed permission filter answers AstrBot's "权限不足" reply and stops the event);
   an unwoken message no session waits for stops here;
2. sessions: a waiting session (`session_waiter`, convo_fsm specs) takes the message
   before any handler;
3. handlers: the activated ones run in order until one stops the event; each yielded or
   returned result is sent (unless the event was stopped first, as AstrBot's scheduler
   does); a handler's exception is answered with AstrBot's error reply.

Each message runs in a task of its own (a handler may wait in `await waiter(event)` for
the whole conversation); `send` returns once everything it woke has finished or waits in
a session. It returns the texts of the replies it caused (and of replies with no cause in
flight, such as a resumed handler's); `host.replies(user)` keeps everything, with the
components. `Context.get_event_queue().put_nowait(event)` runs an event through the
pipeline again; `Context.send_message` sends to a chat by its unified_msg_origin.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from convo_fsm.clock import Clock, VirtualClock
from convo_fsm.compat.astrbot import context as host_context
from convo_fsm.compat.astrbot.api.event.filter import RegisteringCommandable
from convo_fsm.compat.astrbot.api.provider import (
    LLMUnavailable,
    Provider,
    ProviderRequest,
    ScriptedProvider,
)
from convo_fsm.compat.astrbot.api.star import Context, Star
from convo_fsm.compat.astrbot.core.config.astrbot_config import AstrBotConfig
from convo_fsm.compat.astrbot.core.message import components as Comp
from convo_fsm.compat.astrbot.core.message.message_event_result import (
    MessageChain,
    MessageEventResult,
    ResultContentType,
)
from convo_fsm.compat.astrbot.core.platform.astr_message_event import AstrMessageEvent
from convo_fsm.compat.astrbot.core.star.filter.command_group import CommandGroupFilter
from convo_fsm.compat.astrbot.core.star.filter.permission import PermissionTypeFilter
from convo_fsm.compat.astrbot.core.star.star_handler import (
    HANDLER_ATTR,
    EventType,
    StarHandlerMetadata,
)
from convo_fsm.compat.astrbot.loader import PluginImporter
from convo_fsm.compat.astrbot.runtime import EventView, Runtime, park_hook
from convo_fsm.context import Reply
from convo_fsm.engine import Ended

__all__ = ["PluginHost", "PluginMetadata", "SentMessage"]

logger = logging.getLogger("convo_fsm.astrbot")

NO_PERMISSION = "您(ID: {sender})的权限不足以使用此指令。通过 /sid 获取 ID 并请管理员添加。"
HANDLER_ERROR = ":(\n\n在调用插件 {plugin} 的处理函数 {handler} 时出现异常：{error}"


class SentMessage:
    """One message the bot sent: `origin` (the chat's unified_msg_origin), `chain` (the
    components), `text` (as a text-only chat shows it), `sender` (who sent the message
    that caused it; None for timers and proactive sends)."""

    __slots__ = ("chain", "origin", "sender", "text")

    def __init__(self, origin: str, chain: list[Comp.BaseMessageComponent],
                 sender: str | None) -> None:
        self.origin = origin
        self.chain = chain
        self.text = Comp.render_chain(chain)
        self.sender = sender

    @property
    def images(self) -> list[Comp.Image]:
        return [c for c in self.chain if isinstance(c, Comp.Image)]

    def __repr__(self) -> str:
        return f"<SentMessage to {self.origin}: {self.text!r}>"


class PluginMetadata:
    """A loaded plugin: `name` (from `@register`, `metadata.yaml` or the class),
    `star_cls` (the instance), `config`, `module_path`."""

    def __init__(self, name: str, star: Star, config: AstrBotConfig | None,
                 info: dict[str, Any]) -> None:
        self.name = name
        self.star_cls = star
        self.star_cls_type = type(star)
        self.module_path = type(star).__module__
        self.config = config
        self.author = info.get("author")
        self.desc = info.get("desc")
        self.version = info.get("version")
        self.repo = info.get("repo")
        self.activated = True

    def __repr__(self) -> str:
        return f"<PluginMetadata {self.name}>"


class _EventQueue:
    """`Context.get_event_queue()`: what is put here runs through the pipeline again."""

    def __init__(self, host: PluginHost) -> None:
        self._host = host

    def put_nowait(self, event: AstrMessageEvent) -> None:
        if not isinstance(event, AstrMessageEvent):
            raise TypeError(f"the event queue takes AstrMessageEvents, got {event!r}")
        self._host._spawn(event)

    async def put(self, event: AstrMessageEvent) -> None:
        self.put_nowait(event)

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True


class _Bound:
    __slots__ = ("md", "plugin", "star")

    def __init__(self, star: Star, md: StarHandlerMetadata, plugin: PluginMetadata) -> None:
        self.star = star
        self.md = md
        self.plugin = plugin


class PluginHost:
    """Loads AstrBot plugins and feeds them messages (see the module docstring).

    `admins`: sender ids with the admin role. `wake_prefix`: AstrBot's `wake_prefix`.
    `llm`: a scripted model (a list of answers, a function of the request, or a
    `Provider`). `default_key`: what `DefaultSessionFilter` keys by ("sender" or AstrBot's
    "origin"). `root_dir`: AstrBot's root (its `data/` holds plugin data; a temporary
    folder, removed on close, unless given). `bot_config`: overrides of the bot's config.
    `real_wait`: how long `send` waits for a plugin's real-time sleep (see `_settle`).
    The clock is virtual unless given.
    """

    def __init__(self, *, clock: Clock | None = None, admins: Iterable[str] = (),
                 wake_prefix: Iterable[str] = ("/",), llm: Any = None,
                 default_key: str = "sender", root_dir: str | Path | None = None,
                 bot_config: dict[str, Any] | None = None, platform: str = "local",
                 self_id: str = "bot", real_wait: float = 1.0) -> None:
        self.clock: Clock = VirtualClock() if clock is None else clock
        self.runtime = Runtime(clock=self.clock, send=self._spec_reply, default_key=default_key)
        self.platform = platform
        self.self_id = self_id
        self.real_wait = real_wait
        self.bot_config = AstrBotConfig(default_config={
            "wake_prefix": list(wake_prefix),
            "admins_id": [str(a) for a in admins],
            "platform_settings": {"no_permission_reply": True,
                                  "friend_message_needs_wake_prefix": False},
            "provider_settings": {"enable": False},
            **(bot_config or {}),
        })
        self.llm: Provider | None = (llm if isinstance(llm, Provider) or llm is None
                                     else ScriptedProvider(llm))
        self._own_root = root_dir is None
        self.root_dir = Path(tempfile.mkdtemp(prefix="convo_fsm_astrbot_")
                             if root_dir is None else root_dir)
        self.plugins: list[Star] = []
        self.metadata: list[PluginMetadata] = []
        self.errors: list[BaseException] = []  # exceptions plugin code let escape
        self.sent: list[tuple[str, str]] = []  # every (unified_msg_origin, text), in order
        self.messages: list[SentMessage] = []  # the same, with components
        self.kv: dict[str, dict[str, Any]] = {}  # plugins' KV stores
        self.event_queue = _EventQueue(self)
        self._owners: list[int] = []  # per `sent` entry: id of the in-flight event causing it
        self._in_flight: set[int] = set()
        self._handlers: list[_Bound] = []
        self._hooks: list[_Bound] = []
        self._started = 0  # plugins whose initialize() ran
        self._tasks: set[asyncio.Task[Any]] = set()  # pipelines (and plugin tasks) running
        self._active: set[asyncio.Task[Any]] = set()  # those not suspended in a waiter
        self._changed: asyncio.Future[None] | None = None
        self._importer = PluginImporter()
        self._closed = False
        host_context.opened(self)

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    # -- plugins ---------------------------------------------------------------------------
    def load(self, plugin_class: type[Star], config: dict[str, Any] | None = None, *,
             schema: dict[str, Any] | None = None, name: str | None = None) -> Star:
        """Instantiate `plugin_class` and register its handlers. With a `schema` (a
        `_conf_schema.json`'s content) or a `config`, the plugin is built with
        `(context=..., config=AstrBotConfig)`: the schema's defaults, then `config`'s
        values over them; otherwise with `(context=...)`, as AstrBot does."""
        if not (isinstance(plugin_class, type) and issubclass(plugin_class, Star)):
            raise TypeError(f"load() needs a Star subclass, got {plugin_class!r}")
        info: dict[str, Any] = dict(getattr(plugin_class, "__astrbot_plugin__", None) or {})
        plugin_name = name or info.get("name") or plugin_class.__name__
        conf: AstrBotConfig | None = None
        if schema is not None or config is not None:
            conf = AstrBotConfig(schema=schema)
            conf.update(config or {})
        context = Context(self)
        token = host_context.host_var.set(self)
        try:
            if conf is None:
                star = plugin_class(context=context)
            else:
                try:
                    star = plugin_class(context=context, config=conf)
                except TypeError:
                    star = plugin_class(context=context)
        finally:
            host_context.host_var.reset(token)
        meta = PluginMetadata(plugin_name, star, conf, info)
        found = 0
        for md in _handler_records(plugin_class):
            bound = _Bound(star, md, meta)
            if md.event_type is EventType.AdapterMessageEvent and md.event_filters:
                self._handlers.append(bound)
                found += 1
            elif md.event_type is not EventType.AdapterMessageEvent:
                self._hooks.append(bound)
        self._handlers.sort(key=lambda b: -b.md.priority)  # stable: load order within one
        if not found and not any(b.star is star for b in self._hooks):
            raise ValueError(f"{plugin_class.__name__} has no handlers (filter.command, "
                             "filter.event_message_type, ...)")
        self.plugins.append(star)
        self.metadata.append(meta)
        return star

    def load_folder(self, folder: str | Path, config: dict[str, Any] | None = None) -> Star:
        """Load an AstrBot plugin folder as it is: its `main.py` (its `astrbot.*` imports
        map to this compat tree), its `_conf_schema.json` defaults (with `config` over
        them) and its `metadata.yaml` name."""
        folder = Path(folder)
        main = self._importer.load_package(folder)
        classes = [v for v in vars(main).values() if isinstance(v, type)
                   and issubclass(v, Star) and v is not Star and v.__module__ == main.__name__]
        registered = [c for c in classes if hasattr(c, "__astrbot_plugin__")]
        chosen = registered or classes
        if len(chosen) != 1:
            raise ValueError(f"{folder}/main.py must define one Star subclass, found "
                             f"{[c.__name__ for c in chosen]}")
        schema_file = folder / "_conf_schema.json"
        schema = json.loads(schema_file.read_text("utf-8-sig")) if schema_file.is_file() \
            else None
        return self.load(chosen[0], config, schema=schema,
                         name=_metadata_name(folder) or None)

    @property
    def commands(self) -> list[str]:
        """Every command name the loaded plugins answer (with group prefixes)."""
        from convo_fsm.compat.astrbot.core.star.filter.command import CommandFilter

        names = {n for b in self._handlers for f in b.md.event_filters
                 if isinstance(f, CommandFilter) for n in f.get_complete_command_names()}
        return sorted(names)

    @property
    def llm_tools(self) -> list[str]:
        return [str(b.md.extras_configs.get("tool_name")) for b in self._hooks
                if b.md.event_type is EventType.OnCallingFuncToolEvent]

    def plugin_name_for_caller(self) -> str | None:
        """The plugin whose code is running (for `StarTools.get_data_dir()`)."""
        frame = inspect.currentframe()
        modules = {m.module_path.rsplit(".", 1)[0]: m.name for m in self.metadata}
        while frame is not None:
            mod = str(frame.f_globals.get("__name__", ""))
            for prefix, name in modules.items():
                if mod == prefix or mod.startswith(prefix + "."):
                    return name
            frame = frame.f_back
        return self.metadata[-1].name if self.metadata else None

    async def start(self) -> None:
        """Call `initialize()` on plugins not yet started, then their load hooks
        (`on_astrbot_loaded`, `on_platform_loaded`, `on_plugin_loaded`). `send`,
        `advance` and `async with` do this first."""
        token = host_context.host_var.set(self)
        try:
            while self._started < len(self.plugins):
                star = self.plugins[self._started]
                meta = self.metadata[self._started]
                self._started += 1
                await star.initialize()
                for kind in (EventType.OnAstrBotLoadedEvent, EventType.OnPlatformLoadedEvent,
                             EventType.OnPluginLoadedEvent):
                    for bound in self._hooks:
                        if bound.star is star and bound.md.event_type is kind:
                            args = (meta,) if kind is EventType.OnPluginLoadedEvent else ()
                            await _call_hook(bound, args)
        finally:
            host_context.host_var.reset(token)

    # -- messages --------------------------------------------------------------------------
    def event(self, text: str, sender: str = "alice", group: str | None = None,
              platform: str | None = None, **kw: Any) -> AstrMessageEvent:
        """An event as this host builds it (its `send` reaches the host). `components`
        gives the message's components (default: one Plain of `text`); `sender_name`."""
        event = AstrMessageEvent(text, sender, group, platform or self.platform,
                                 outlet=self._outlet, runtime=self.runtime,
                                 self_id=self.self_id, **kw)
        event._convo_fsm_cause = id(event)  # type: ignore[attr-defined]
        return event

    async def send(self, text: str, sender: str = "alice", group: str | None = None,
                   platform: str | None = None, **kw: Any) -> list[str]:
        """Deliver one message; return the texts of the replies it caused, in order."""
        return await self.deliver(self.event(text, sender, group, platform, **kw))

    async def deliver(self, event: AstrMessageEvent) -> list[str]:
        """Like `send`, for an event built with `event(...)`."""
        await self.start()
        start = len(self.sent)
        me = getattr(event, "_convo_fsm_cause", id(event))
        self._in_flight.add(me)
        try:
            self._spawn(event)
            await self._settle()
        finally:
            self._in_flight.discard(me)
        return [text for (_, text), owner in zip(self.sent[start:], self._owners[start:],
                                                  strict=True) if owner in (0, me)]

    async def advance(self, seconds: float) -> list[str]:
        """Let `seconds` of virtual time pass; return the replies timeouts caused."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance() needs the host's default VirtualClock")
        await self.start()
        start = len(self.sent)
        await self.clock.advance(seconds)
        await self._settle()
        return [text for _, text in self.sent[start:]]

    def replies(self, user: str | None = None, group: str | None = None) -> list[SentMessage]:
        """What the bot sent: to `user` (caused by their messages, or in their private
        chat) and/or in `group`; everything without arguments."""
        out = []
        for m in self.messages:
            if group is not None and not m.origin.endswith(f":GroupMessage:{group}"):
                continue
            if user is not None and m.sender != user and not m.origin.endswith(
                    f":FriendMessage:{user}"):
                continue
            out.append(m)
        return out

    def _record(self, origin: str, chain: list[Comp.BaseMessageComponent], cause: Any) -> None:
        cause_id = getattr(cause, "_convo_fsm_cause", id(cause)) if cause is not None else 0
        sender = cause.get_sender_id() if isinstance(cause, AstrMessageEvent) else None
        message = SentMessage(origin, list(chain), sender)
        self.messages.append(message)
        self.sent.append((origin, message.text))
        self._owners.append(cause_id if cause_id in self._in_flight else 0)

    async def send_message(self, session: str, message_chain: MessageChain) -> bool:
        """`Context.send_message`: a proactive message to the chat `session`."""
        if not isinstance(message_chain, MessageChain):
            raise TypeError(f"send_message needs a MessageChain, got {message_chain!r}")
        self._record(session, message_chain.chain, None)
        return True

    def track(self, awaitable: Any) -> None:
        """`Context.register_task`: a plugin's background task, cancelled on close."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def close(self) -> None:
        """Cancel every unfinished handler (their waiters end with them), end every
        session, call `terminate` on plugins; no task is left behind."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.runtime.engine.close()
        token = host_context.host_var.set(self)
        try:
            for star in self.plugins:
                try:
                    await star.terminate()
                except Exception as exc:
                    logger.exception("plugin %s terminate() failed", type(star).__name__)
                    self.errors.append(exc)
        finally:
            host_context.host_var.reset(token)
        self._importer.release()
        host_context.closed(self)
        if self._own_root:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    async def __aenter__(self) -> PluginHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the pipeline ------------------------------------------------------------------------
    def _spawn(self, event: AstrMessageEvent) -> None:
        ctx = contextvars.copy_context()
        ctx.run(park_hook.set, self._park)
        ctx.run(host_context.host_var.set, self)
        task = asyncio.get_running_loop().create_task(self._pipeline(event), context=ctx)
        self._tasks.add(task)
        self._active.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._active.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]
        self._poke()

    async def _pipeline(self, event: AstrMessageEvent) -> None:
        try:
            activated = await self._waking(event)
            if activated is None or event.is_stopped():
                return
            if await self.runtime.dispatch(event):  # a waiting session takes it first
                event.stop_event()
                return
            await self._run_handlers(event, activated)
        except Exception as exc:
            logger.exception("pipeline failed on %r", event)
            self.errors.append(exc)

    async def _waking(self, event: AstrMessageEvent
                      ) -> list[tuple[_Bound, dict[str, Any]]] | None:
        cfg = self.bot_config
        text = event.message_str.strip()
        event.message_str = text
        if event.get_sender_id() in cfg["admins_id"]:
            event.role = "admin"
        messages = event.get_messages()
        is_wake = False
        for prefix in cfg["wake_prefix"]:
            if text.startswith(prefix):
                first = messages[0] if messages else None
                if (not event.is_private_chat() and isinstance(first, Comp.At)
                        and str(first.qq) not in (str(event.get_self_id()), "all")):  # type: ignore[attr-defined]
                    break  # a group message @-ing someone else does not wake the bot
                is_wake = event.is_wake = event.is_at_or_wake_command = True
                event.message_str = text[len(prefix):].strip()
                break
        if not is_wake:
            for comp in messages:
                if ((isinstance(comp, Comp.At) and str(comp.qq) == str(event.get_self_id()))  # type: ignore[attr-defined]
                        or isinstance(comp, Comp.AtAll)
                        or (isinstance(comp, Comp.Reply)
                            and str(comp.sender_id) == str(event.get_self_id()))):  # type: ignore[attr-defined]
                    is_wake = event.is_wake = event.is_at_or_wake_command = True
                    break
            if event.is_private_chat() and not cfg["platform_settings"].get(
                    "friend_message_needs_wake_prefix", False):
                is_wake = event.is_wake = event.is_at_or_wake_command = True
        activated: list[tuple[_Bound, dict[str, Any]]] = []
        for bound in self._handlers:
            passed, denied, deny_loudly = True, False, False
            for f in bound.md.event_filters:
                try:
                    if isinstance(f, PermissionTypeFilter):
                        if not f.filter(event, cfg):
                            denied, deny_loudly = True, f.raise_error
                    elif not f.filter(event, cfg):
                        passed = False
                        break
                except Exception as exc:
                    await event.send(MessageEventResult().message(
                        f"插件 {bound.plugin.name}: {exc}").use_markdown(False))
                    event.stop_event()
                    passed = False
                    break
            if passed:
                if denied:
                    if not deny_loudly:
                        continue
                    if cfg["platform_settings"].get("no_permission_reply", True):
                        await event.send(MessageChain().message(
                            NO_PERMISSION.format(sender=event.get_sender_id())))
                    event.stop_event()
                    return None
                is_wake = event.is_wake = True
                if not any(isinstance(f, CommandGroupFilter) for f in bound.md.event_filters):
                    activated.append((bound, dict(event.get_extra("parsed_params") or {})))
            event._extras.pop("parsed_params", None)
        if not is_wake and not self._session_waits_for(event):
            event.stop_event()
            return None
        return activated

    def _session_waits_for(self, event: AstrMessageEvent) -> bool:
        return bool(len(self.runtime.engine)) and self.runtime.route_key(event) is not None

    async def _run_handlers(self, event: AstrMessageEvent,
                            activated: list[tuple[_Bound, dict[str, Any]]]) -> None:
        for bound, params in activated:
            if event.is_stopped():
                break
            try:
                result = bound.md.handler(bound.star, event, **params)
                if inspect.isasyncgen(result):
                    async for item in result:
                        if isinstance(item, ProviderRequest):
                            await self._llm_request(event, item)
                        elif isinstance(item, MessageEventResult):
                            event.set_result(item)
                        if event.is_stopped():  # AstrBot's scheduler: nothing more runs
                            await result.aclose()
                            return
                        await self._respond(event)
                elif inspect.isawaitable(result):
                    item = await result
                    if isinstance(item, MessageEventResult):
                        event.set_result(item)
                    if not event.is_stopped():
                        await self._respond(event)
                if event.is_stopped():
                    break
                event.clear_result()
            except Exception as exc:
                logger.exception("plugin handler %s failed on %r", bound.md.handler_name, event)
                self.errors.append(exc)
                if not event.is_stopped() and event.is_at_or_wake_command:
                    event.set_result(MessageEventResult().message(HANDLER_ERROR.format(
                        plugin=bound.plugin.name, handler=bound.md.handler_name, error=exc)))
                    await self._respond(event)
                event.stop_event()

    async def _llm_request(self, event: AstrMessageEvent, request: ProviderRequest) -> None:
        """A handler yielded `event.request_llm(...)`: the scripted LLM answers and the
        answer is the event's result (AstrBot's agent stage, minus tools and history)."""
        if self.llm is None:
            raise LLMUnavailable("event.request_llm(): no LLM provider in this PluginHost; "
                                 "give one with PluginHost(llm=[...answers]) or "
                                 "PluginHost(llm=lambda request: ...)")
        answer = await self.llm.text_chat(prompt=request.prompt,
                                          session_id=event.unified_msg_origin,
                                          image_urls=request.image_urls,
                                          contexts=request.contexts,
                                          system_prompt=request.system_prompt)
        event.set_result(MessageEventResult().message(answer.completion_text)
                         .set_result_content_type(ResultContentType.LLM_RESULT))

    async def _respond(self, event: AstrMessageEvent) -> None:
        result = event.get_result()
        if result is not None and result.chain:
            await event.send(result.derive(result.chain))
        event.clear_result()

    # -- replies -------------------------------------------------------------------------------
    def _outlet(self, event: AstrMessageEvent, chain: MessageChain) -> None:
        self._record(event.unified_msg_origin, chain.chain, event)

    def _spec_reply(self, reply: Reply) -> None:
        view = reply.event
        origin = view.origin if isinstance(view, EventView) else None
        self._record(reply.to, [Comp.Plain(reply.text)], origin)

    # -- settling ------------------------------------------------------------------------------
    def _park(self, resume: asyncio.Future[Ended]) -> None:
        task = asyncio.current_task()
        if task not in self._tasks:
            return
        assert task is not None
        self._active.discard(task)
        self._poke()

        def unpark(_: object) -> None:
            if not task.done():
                self._active.add(task)  # runnable again from now: _settle waits for it
            self._poke()

        resume.add_done_callback(unpark)

    def _poke(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def _settle(self) -> None:
        """Wait until every pipeline task is done or waits in a session.

        A handler waiting in `await waiter(event)` tells the host so (`park_hook`); one
        that waits on its own task or a `gather` of waiters does not, so the host also
        stops when the loop has nothing left to run and no timer pending: everything
        unfinished then waits for a message or virtual time. Only running tasks are
        looked at, never every suspended one: a send costs the same with 10 or 10,000
        conversations waiting."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # asyncio's own loops; others: parks only
        scheduled = getattr(loop, "_scheduled", None)
        await asyncio.sleep(0)  # let futures resolved just now run their callbacks (unpark)
        while self._active:
            timeout = None
            if ready is not None:
                for _ in range(_SPINS):
                    if not ready:
                        break
                    await asyncio.sleep(0)
                if not self._active:
                    return
                if not ready:
                    now = loop.time()
                    due = [h.when() for h in scheduled or ()
                           if not h.cancelled() and h.when() <= now + self.real_wait]
                    if not due:
                        return  # quiescent: the rest waits for messages or (virtual) time
                    timeout = max(0.0, min(due) - now) + 0.001
            self._changed = loop.create_future()
            await asyncio.wait([*self._active, self._changed], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)


_SPINS = 100_000


def _handler_records(cls: type) -> list[StarHandlerMetadata]:
    """The handler records of a plugin class, in definition order (base classes first;
    an override replaces its base's)."""
    seen: dict[str, StarHandlerMetadata] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, RegisteringCommandable):
                md = value.handler_md
            else:
                fn = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                md = getattr(fn, HANDLER_ATTR, None) if callable(fn) else None
            if isinstance(md, StarHandlerMetadata):
                seen.pop(name, None)
                seen[name] = md
    return list(seen.values())


async def _call_hook(bound: _Bound, args: tuple[Any, ...]) -> None:
    fn: Callable[..., Any] = bound.md.handler
    wanted = len(inspect.signature(fn).parameters) - 1  # after self
    result = fn(bound.star, *args[:max(wanted, 0)])
    if inspect.isasyncgen(result):
        async for _ in result:
            pass
    elif inspect.isawaitable(result):
        await result


def _metadata_name(folder: Path) -> str:
    meta = folder / "metadata.yaml"
    if not meta.is_file():
        return ""
    for line in meta.read_text("utf-8").splitlines():  # `name: x` (no YAML library needed)
        key, _, value = line.partition(":")
        if key.strip() == "name" and value.strip():
            return value.strip().strip("'\"")
    return ""
