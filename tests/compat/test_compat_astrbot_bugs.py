"""AstrBot 4.29.3's session-control bugs (anchors.md), one regression test each, through the
compat API: the same plugin code, none of the bugs."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from convo_fsm.compat.astrbot import PluginHost, WaiterEnded, WaiterExists
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, filter
from convo_fsm.compat.astrbot.api.star import Star
from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    SessionController,
    SessionFilter,
    session_waiter,
)


async def until(cond: Any, limit: int = 1000) -> None:
    """Let the loop run until `cond()` holds (bounded: no sleeping, no wall clock)."""
    for _ in range(limit):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


class Recorder:
    """A plugin factory: `/play` waits (timeout 60) with a handler that records what it
    sees and obeys `stop`/`slow`; `/hello` is an ordinary command."""

    def __init__(self, host: PluginHost, *, replace: bool = False,
                 session_filter: SessionFilter | None = None, name: str = "play") -> None:
        self.seen: list[tuple[str, str]] = []
        self.outcomes: list[tuple[str, Any]] = []
        self.controllers: list[SessionController] = []
        self.cancelled: list[str] = []
        self.gate = asyncio.Event()
        rec = self

        @session_waiter(timeout=60, replace=replace)
        async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
            rec.controllers.append(controller)
            rec.seen.append((event.get_sender_id(), event.message_str))
            if event.message_str == "stop":
                controller.stop()
            elif event.message_str == "slow":
                try:
                    await rec.gate.wait()
                except asyncio.CancelledError:
                    rec.cancelled.append(event.message_str)
                    raise
                controller.keep(60, reset_timeout=True)  # after a timeout: must do nothing

        class Plugin(Star):
            @filter.command(name)
            async def play(self, event: AstrMessageEvent) -> Any:
                yield event.plain_result("started")
                try:
                    kw = {} if session_filter is None else {"session_filter": session_filter}
                    rec.outcomes.append(("returned", await waiter(event, **kw)))
                except Exception as exc:
                    rec.outcomes.append(("raised", exc))
                event.stop_event()

            @filter.command("twice")
            async def twice(self, event: AstrMessageEvent) -> None:
                # Two waiters on one key, both starting before either registered.
                async def one() -> None:
                    try:
                        rec.outcomes.append(("returned", await waiter(event)))
                    except Exception as exc:
                        rec.outcomes.append(("raised", exc))

                await asyncio.gather(one(), one())
                event.stop_event()

            @filter.command("hello")
            async def hello(self, event: AstrMessageEvent) -> Any:
                yield event.plain_result(f"hello {event.get_sender_id()}")

        host.load(Plugin)


class GroupFilter(SessionFilter):
    """The docs' CustomFilter: the whole group is one session."""

    def filter(self, event: AstrMessageEvent) -> str:
        return event.get_group_id() if event.get_group_id() else event.unified_msg_origin


async def test_bug1_default_filter_is_per_sender_in_group() -> None:
    host = PluginHost()
    rec = Recorder(host)
    await host.send("/play", sender="alice", group="g")
    # AstrBot keyed the default filter by chat: Bob's message went into Alice's session.
    assert await host.send("/hello", sender="bob", group="g") == ["hello bob"]
    await host.send("mine", sender="alice", group="g")
    assert rec.seen == [("alice", "mine")]
    # A group-wide session is the docs' custom filter, as written.
    host2 = PluginHost()
    rec2 = Recorder(host2, session_filter=GroupFilter())
    await host2.send("/play", sender="alice", group="g")
    await host2.send("x", sender="bob", group="g")
    await host2.send("y", sender="alice", group="g")
    assert rec2.seen == [("bob", "x"), ("alice", "y")]


async def test_bug2_second_waiter_on_one_key_is_refused_and_old_end_keeps_new() -> None:
    host = PluginHost()
    rec = Recorder(host)
    # Two starts for one key before either registered (AstrBot: the second overwrote the
    # first and the first's cleanup then deleted the second's entry).
    await host.send("/twice")
    assert len(rec.outcomes) == 1
    kind, exc = rec.outcomes[0]
    assert kind == "raised" and isinstance(exc, WaiterExists)
    assert "already waiting" in str(exc)
    await host.send("a")
    assert rec.seen == [("alice", "a")]  # the first still gets the messages
    await host.send("stop")
    assert rec.outcomes[-1] == ("returned", None)
    assert len(host.engine) == 0


async def test_bug2_replace_policy_and_the_old_end_never_removes_the_new() -> None:
    host = PluginHost()
    rec = Recorder(host, replace=True)
    await host.send("/twice")
    assert [(k, type(e)) for k, e in rec.outcomes] == [("raised", WaiterEnded)]
    assert rec.outcomes[0][1].reason == "replaced"
    assert len(host.engine) == 1  # the older one's end left the newer in place
    await host.send("a")
    assert rec.seen == [("alice", "a")]
    await host.send("stop")
    assert rec.outcomes[-1] == ("returned", None)


async def test_bug3_message_queued_for_an_ending_session_is_handed_back() -> None:
    host = PluginHost()
    rec = Recorder(host)
    await host.send("/play")
    slow = asyncio.ensure_future(host.send("slow"))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(host.send("/hello"))  # waits for the session's turn
    await asyncio.sleep(0)
    assert not queued.done()
    await host.advance(60)  # the session times out before /hello's turn
    # AstrBot swallowed it: here it goes to the ordinary handlers.
    assert await queued == ["hello alice"]
    assert await slow == []
    assert [(k, type(e)) for k, e in rec.outcomes] == [("raised", TimeoutError)]


async def test_bug4_timeout_and_stop_cancel_a_running_handler_late_keep_noop() -> None:
    host = PluginHost()
    rec = Recorder(host)
    await host.send("/play")
    slow = asyncio.ensure_future(host.send("slow"))
    await until(lambda: ("alice", "slow") in rec.seen)  # the handler is running
    await host.advance(60)
    assert rec.cancelled == ["slow"]  # AstrBot let it run on past the timeout
    await slow
    [controller] = rec.controllers
    controller.keep(60, reset_timeout=True)  # on an ended session: nothing
    controller.keep(5)
    assert len(host.engine) == 0 and host.engine.pending_timers() == 0
    assert [(k, type(e)) for k, e in rec.outcomes] == [("raised", TimeoutError)]

    # stop() from elsewhere cancels it too, and the waiter returns None.
    await host.send("/play", sender="bob")
    slow = asyncio.ensure_future(host.send("slow", sender="bob"))
    await until(lambda: ("bob", "slow") in rec.seen)
    rec.controllers[-1].stop()
    await slow
    await host.advance(0)
    assert rec.cancelled == ["slow", "slow"]
    assert rec.outcomes[-1] == ("returned", None)


async def test_bug5_no_timer_or_task_left_after_a_session_ends() -> None:
    host = PluginHost()
    Recorder(host)
    me = asyncio.current_task()
    for user in ("a", "b", "c"):
        await host.send("/play", sender=user)
    # While waiting: only the plugins' own suspended /play handlers, no timer tasks.
    assert len(asyncio.all_tasks() - {me}) == 3
    assert host.engine.pending_timers() == 3  # heap entries, not tasks
    await host.send("stop", sender="a")
    await host.send("/play", sender="d")
    await host.send("stop", sender="d")
    await host.advance(60)  # b and c time out
    assert len(host.engine) == 0
    assert host.engine.pending_timers() == 0
    assert tuple(host.engine.busy_keys()) == ()
    assert asyncio.all_tasks() == {me}
    assert host.runtime._waiters == {}


class CountingFilter(SessionFilter):
    calls = 0

    def filter(self, event: AstrMessageEvent) -> str:
        CountingFilter.calls += 1
        return f"{event.unified_msg_origin}/{event.get_sender_id()}"


async def test_bug6_routing_cost_does_not_grow_with_waiting_sessions() -> None:
    host = PluginHost()
    Recorder(host, session_filter=CountingFilter())
    costs = []
    users = [f"u{i}" for i in range(300)]
    started = 0
    for n in (1, 30, 300):
        while started < n:
            await host.send("/play", sender=users[started], group="g")
            started += 1
        CountingFilter.calls = 0
        assert await host.send("/hello", sender="outsider", group="g") == ["hello outsider"]
        costs.append(CountingFilter.calls)
    # AstrBot called one filter per waiting session; here one per filter class.
    assert costs == [1, 1, 1]
    # Ending sessions in any order is a dict delete each, and leaves nothing behind.
    random.Random(4).shuffle(users)
    for user in users:
        await host.send("stop", sender=user, group="g")
    assert len(host.engine) == 0 and host.engine.pending_timers() == 0
