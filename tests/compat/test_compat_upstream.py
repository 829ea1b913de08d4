"""The observable cases of AstrBot's own session_waiter tests from its open pull requests
(#10011 and #10166: a finished waiter never removes a newer one, cleanup on one key;
#9770, #9753, #9442 and #9378: members and chats isolated; cancellation; USER_SESSIONS
contents), restated here against the compat layer's `SessionWaiter`, `USER_SESSIONS`,
`FILTERS` and `DefaultSessionFilter` (their code is not copied: the cases are). README lists
which apply and why the others do not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from convo_fsm.compat.astrbot import PluginHost, WaiterEnded, WaiterExists
from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    FILTERS,
    USER_SESSIONS,
    DefaultSessionFilter,
    SessionController,
    SessionFilter,
    SessionWaiter,
)


class Fixed(SessionFilter):
    def filter(self, event: Any) -> str:
        return "test:session"


async def until(cond: Any, limit: int = 1000) -> None:
    for _ in range(limit):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def recorder(log: list[tuple[str, str]], name: str) -> Any:
    async def handler(controller: SessionController, event: Any) -> None:
        log.append((name, event.message_str))

    return handler


async def test_single_waiter_registers_on_its_key_and_cleans_up() -> None:  # 10011, 10166
    async with PluginHost() as host:
        waiter = SessionWaiter(Fixed(), "test:session", False)
        task = asyncio.ensure_future(waiter.register_wait(recorder([], "a"), 30))
        await until(lambda: "test:session" in USER_SESSIONS)
        assert USER_SESSIONS["test:session"] is waiter
        assert waiter.session_controller is not None and list(FILTERS) == [waiter.session_filter]
        waiter.session_controller.stop()
        assert await task is None
        assert "test:session" not in USER_SESSIONS and len(FILTERS) == 0
        assert len(host.engine) == 0


async def test_a_finished_older_waiter_never_removes_the_newer_one() -> None:  # 10011, 10166
    async with PluginHost() as host:
        log: list[tuple[str, str]] = []
        a = SessionWaiter(Fixed(), "test:session", False)
        b = SessionWaiter(Fixed(), "test:session", False)
        task_a = asyncio.ensure_future(a.register_wait(recorder(log, "a"), 30))
        await until(lambda: USER_SESSIONS.get("test:session") is a)
        # AstrBot let B overwrite A silently; here B takes over only when asked to.
        with pytest.raises(WaiterExists):
            await b.register_wait(recorder(log, "b"), 30)
        task_b = asyncio.ensure_future(b.register_wait(recorder(log, "b"), 30, replace=True))
        await until(lambda: USER_SESSIONS.get("test:session") is b)
        with pytest.raises(WaiterEnded):
            await task_a  # A ended ("replaced"), and its cleanup left B alone
        assert USER_SESSIONS["test:session"] is b
        assert a.session_controller is not None
        a.session_controller.stop()  # stopping the finished A again changes nothing
        assert USER_SESSIONS["test:session"] is b
        await SessionWaiter.trigger("test:session", host.event("hello"))
        assert log == [("b", "hello")]  # B's handler ran, with B's controller
        assert b.session_controller is not None
        b.session_controller.stop()
        assert await task_b is None
        assert "test:session" not in USER_SESSIONS  # B cleaned up after itself


async def test_group_members_and_chats_are_isolated_by_default() -> None:  # 9770, 9753, 9442
    async with PluginHost() as host:
        key = DefaultSessionFilter().filter
        alice_g1 = host.event("x", "alice", "g1")
        assert key(alice_g1) != key(host.event("x", "bob", "g1"))  # members apart
        assert key(alice_g1) != key(host.event("x", "alice", "g2"))  # chats apart
        assert key(alice_g1) != key(host.event("x", "alice"))  # group vs private
        assert key(host.event("x", "alice")) == host.event("x", "alice").unified_msg_origin
        assert key(alice_g1).startswith(alice_g1.unified_msg_origin)
        assert "alice" in key(alice_g1)


async def test_a_member_cannot_trigger_another_members_waiter() -> None:  # 9770, 9378
    async with PluginHost() as host:
        log: list[tuple[str, str]] = []
        start = host.event("start", "alice", "g1")
        waiter = SessionWaiter(DefaultSessionFilter(), DefaultSessionFilter().filter(start),
                               False)
        task = asyncio.ensure_future(waiter.register_wait(recorder(log, "alice"), 30))
        await until(lambda: len(USER_SESSIONS) == 1)
        assert not await host.runtime.dispatch(host.event("mine now", "bob", "g1"))
        assert not await host.runtime.dispatch(host.event("elsewhere", "alice", "g2"))
        assert await host.runtime.dispatch(host.event("my answer", "alice", "g1"))
        assert log == [("alice", "my answer")]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cancelling_the_waiting_task_ends_the_session_and_cleans_up() -> None:
    async with PluginHost() as host:
        waiter = SessionWaiter(Fixed(), "test:session", False)
        task = asyncio.ensure_future(waiter.register_wait(recorder([], "a"), 30))
        await until(lambda: "test:session" in USER_SESSIONS)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "test:session" not in USER_SESSIONS and len(FILTERS) == 0
        assert len(host.engine) == 0


async def test_origin_keyed_plugins_register_on_the_raw_origin() -> None:  # 9378
    """A plugin registering `SessionWaiter(DefaultSessionFilter(), umo, ...)` by hand
    (its lookups go through DefaultSessionFilter) needs AstrBot's key: default_key="origin"."""
    async with PluginHost(default_key="origin") as host:
        log: list[tuple[str, str]] = []
        start = host.event("start", "alice", "g1")
        waiter = SessionWaiter(DefaultSessionFilter(), start.unified_msg_origin, False)
        task = asyncio.ensure_future(waiter.register_wait(recorder(log, "w"), 30))
        await until(lambda: len(USER_SESSIONS) == 1)
        assert await host.runtime.dispatch(host.event("from bob", "bob", "g1"))
        assert log == [("w", "from bob")]  # AstrBot's per-chat key, as the plugin expects
        assert waiter.session_controller is not None
        waiter.session_controller.stop()
        assert await task is None
