"""`PluginHost`: runs AstrBot-style plugins with no AstrBot installed.

    host = PluginHost()
    host.load(IdiomPlugin)
    await host.send("/idiom-chain", sender="alice")   # -> ["Please send an idiom~"]
    await host.advance(61)                            # -> ["You timed out!"]

An incoming message goes first to the engine (session waiters and convo_fsm specs); if no
session takes it, to the `filter.command` handlers of the loaded plugins, in load order,
until one stops the event. A command handler runs as a task of its own because it may
suspend in `await waiter(event)` for the whole conversation (as it does in AstrBot's
pipeline); `send` returns once every handler it woke has finished or is suspended in a
waiter. The replies are the texts of everything sent meanwhile: `event.send(...)`, results
an async-generator handler yields (or a coroutine handler returns), `ctx.reply` of specs.
When sends overlap (tasks), each gets the replies its own event caused; replies with no
cause in flight (a suspended handler resuming, a timer) go to every call under way.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from convo_fsm.clock import Clock, VirtualClock
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, MessageChain, filter
from convo_fsm.compat.astrbot.api.star import Context, Star
from convo_fsm.compat.astrbot.runtime import EventView, Runtime, park_hook
from convo_fsm.context import Reply
from convo_fsm.engine import Ended

__all__ = ["PluginHost"]

logger = logging.getLogger("convo_fsm.astrbot")

Handler = Callable[[AstrMessageEvent], Any]


class PluginHost:
    """Loads `Star` plugins and feeds them messages. The clock is virtual unless given."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = VirtualClock() if clock is None else clock
        self.runtime = Runtime(clock=self.clock, send=self._spec_reply)
        self.plugins: list[Star] = []
        self.errors: list[BaseException] = []  # exceptions plugin handlers let escape
        self.sent: list[tuple[str, str]] = []  # every (unified_msg_origin, text), in order
        self._owners: list[int] = []  # per `sent` entry: id of the in-flight event causing it
        self._in_flight: set[int] = set()
        self._commands: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # command handlers not finished
        self._active: set[asyncio.Task[None]] = set()  # those not suspended in a waiter
        self._changed: asyncio.Future[None] | None = None

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    # -- plugins ---------------------------------------------------------------------------
    def load(self, plugin_class: type[Star], config: dict[str, Any] | None = None) -> Star:
        """Instantiate `plugin_class` and register its `filter.command` handlers."""
        if not (isinstance(plugin_class, type) and issubclass(plugin_class, Star)):
            raise TypeError(f"load() needs a Star subclass, got {plugin_class!r}")
        star = plugin_class(Context(self)) if config is None else plugin_class(
            Context(self), config)
        found = 0
        for name in dir(plugin_class):
            fn = inspect.getattr_static(plugin_class, name, None)
            names = getattr(fn, filter.COMMANDS_ATTR, None)
            if not names:
                continue
            handler = getattr(star, name)
            for command in names:
                self._commands.setdefault(command, []).append(handler)
            found += 1
        if not found:
            raise ValueError(f"{plugin_class.__name__} has no filter.command handlers")
        self.plugins.append(star)
        return star

    @property
    def commands(self) -> list[str]:
        return sorted(self._commands)

    # -- messages --------------------------------------------------------------------------
    def event(self, text: str, sender: str = "alice", group: str | None = None,
              platform: str = "local", **kw: Any) -> AstrMessageEvent:
        """An event as this host builds it (its `send` reaches the host)."""
        return AstrMessageEvent(text, sender, group, platform, outlet=self._outlet,
                                runtime=self.runtime, **kw)

    async def send(self, text: str, sender: str = "alice", group: str | None = None,
                   platform: str = "local", **kw: Any) -> list[str]:
        """Deliver one message; return the texts of the replies it caused, in order."""
        return await self.deliver(self.event(text, sender, group, platform, **kw))

    async def deliver(self, event: AstrMessageEvent) -> list[str]:
        """Like `send`, for an event built with `event(...)`."""
        start = len(self.sent)
        me = id(event)
        self._in_flight.add(me)
        try:
            if not await self.runtime.dispatch(event):
                handlers = self._match(event.message_str)
                if handlers:
                    self._spawn(handlers, event)
            await self._settle()
        finally:
            self._in_flight.discard(me)
        return [text for (_, text), owner in zip(self.sent[start:], self._owners[start:],
                                                  strict=True) if owner in (0, me)]

    async def advance(self, seconds: float) -> list[str]:
        """Let `seconds` of virtual time pass; return the replies timeouts caused."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance() needs the host's default VirtualClock")
        start = len(self.sent)
        await self.clock.advance(seconds)
        await self._settle()
        return [text for _, text in self.sent[start:]]

    def _record(self, origin: str, text: str, cause: object) -> None:
        self.sent.append((origin, text))
        self._owners.append(id(cause) if id(cause) in self._in_flight else 0)

    async def send_message(self, session: str, message_chain: MessageChain) -> bool:
        """`Context.send_message`: a proactive message to the chat `session`."""
        self._record(session, message_chain.render(), None)
        return True

    async def close(self) -> None:
        """Cancel every unfinished handler (their waiters end with them), end every
        session, call `terminate` on plugins."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.runtime.engine.close()
        for star in self.plugins:
            await star.terminate()

    async def __aenter__(self) -> PluginHost:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals --------------------------------------------------------------------------
    def _match(self, text: str) -> list[Handler]:
        if len(text) < 2 or text[0] != "/":
            return []
        head = text[1:].split(None, 1)
        return list(self._commands.get(head[0], ())) if head else []

    def _outlet(self, event: AstrMessageEvent, chain: MessageChain) -> None:
        self._record(event.unified_msg_origin, chain.render(), event)

    def _spec_reply(self, reply: Reply) -> None:
        view = reply.event
        self._record(reply.to, reply.text, view.origin if isinstance(view, EventView) else None)

    def _spawn(self, handlers: list[Handler], event: AstrMessageEvent) -> None:
        task = asyncio.get_running_loop().create_task(self._drive(handlers, event))
        self._tasks.add(task)
        self._active.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._active.discard(task)

    async def _drive(self, handlers: list[Handler], event: AstrMessageEvent) -> None:
        park_hook.set(self._park)  # in this task's context only
        for handler in handlers:
            try:
                result = handler(event)
                if inspect.isasyncgen(result):
                    async for item in result:
                        await self._result(event, item)
                elif inspect.isawaitable(result):
                    await self._result(event, await result)
            except Exception as exc:
                logger.exception("plugin handler %s failed on %r", _name(handler), event)
                self.errors.append(exc)
            if event.is_stopped():
                break

    @staticmethod
    async def _result(event: AstrMessageEvent, item: Any) -> None:
        if item is None:
            return
        if isinstance(item, str):
            item = event.plain_result(item)
        if isinstance(item, MessageChain):
            await event.send(item)
        else:
            raise TypeError(f"a handler yielded {type(item).__name__}, not a result")

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
        """Wait until every handler task is done or suspended in a waiter."""
        # Only running handlers are looked at, never every suspended one: a send costs the
        # same with 10 or 10,000 conversations waiting.
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # let futures resolved just now run their callbacks (unpark)
        while self._active:
            self._changed = loop.create_future()
            await asyncio.wait([*self._active, self._changed],
                               return_when=asyncio.FIRST_COMPLETED)


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
