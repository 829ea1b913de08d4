"""Faults found in the compat layer (issue 17, section 4), each a regression test: filter
kinds that grew per attribute value, a filter class defined in a handler routing every call
by the first closure, waiter specs leaking per timeout value and colliding by name."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from budget import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convo_fsm.compat.astrbot import PluginHost, WaiterEnded
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, filter
from convo_fsm.compat.astrbot.api.star import Star
from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    SessionController,
    SessionFilter,
    session_waiter,
)


class RoomFilter(SessionFilter):
    """Holds its room per call, as plugins do (`RoomFilter(room_id)`)."""

    calls: ClassVar[int] = 0

    def __init__(self, room: str) -> None:
        self.room = room

    def filter(self, event: AstrMessageEvent) -> str:
        RoomFilter.calls += 1
        return f"{self.room}:{event.get_group_id()}"


class Rooms(Star):
    @filter.command("room")
    async def room(self, event: AstrMessageEvent) -> None:
        @session_waiter(timeout=600)
        async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
            if event.message_str == "end":
                await event.send(event.plain_result("room closed"))
                controller.stop()

        await waiter(event, RoomFilter(f"room-{event.get_group_id()}"))


async def test_per_call_filter_attributes_make_no_permanent_filter_kinds() -> None:
    async with PluginHost() as host:
        host.load(Rooms)
        rooms = [f"g{i}" for i in range(300)]
        for group in rooms:
            await host.send("/room", sender="ann", group=group)
        assert len(host.engine) == 300
        [kind] = host.runtime._filter_kinds.values()  # one kind for the class
        assert len(kind.live) == 300  # one live instance per room while the rooms wait
        assert await host.send("end", sender="ann", group="g7") == ["room closed"]
        for group in rooms:
            if group != "g7":
                assert await host.send("end", sender="bob", group=group) == ["room closed"]
        assert len(host.engine) == 0 and not kind.live
        RoomFilter.calls = 0
        assert await host.send("just chatting", sender="ann", group="g1") == []
        assert RoomFilter.calls == 0  # no filter of an ended room is asked
        # A new room works as before.
        await host.send("/room", sender="cy", group="g1")
        assert await host.send("end", sender="dee", group="g1") == ["room closed"]


async def test_a_filter_class_defined_in_the_handler_routes_by_its_own_instance() -> None:
    got: list[tuple[str, str]] = []

    class Duel(Star):
        @filter.command("duel")
        async def duel(self, event: AstrMessageEvent) -> None:
            owner = event.get_sender_id()

            class OwnerOnly(SessionFilter):  # same name every call, different closure
                def filter(self, event: AstrMessageEvent) -> str:
                    who = event.get_sender_id()
                    return f"duel:{owner}" if who == owner else f"spectator:{who}"

            @session_waiter(timeout=60)
            async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
                got.append((owner, event.message_str))
                await event.send(event.plain_result(f"{owner} plays {event.message_str}"))
                controller.stop()

            await waiter(event, OwnerOnly())

    async with PluginHost() as host:
        host.load(Duel)
        await host.send("/duel", sender="alice", group="g")
        await host.send("/duel", sender="bob", group="g")
        assert await host.send("rock", sender="bob", group="g") == ["bob plays rock"]
        assert await host.send("paper", sender="alice", group="g") == ["alice plays paper"]
        assert got == [("bob", "rock"), ("alice", "paper")]
        assert len(host.engine) == 0
        assert not any(k.live for k in host.runtime._filter_kinds.values())


class Timed(Star):
    """The waiter's timeout comes from the user (`/wait 12.5`)."""

    outcomes: ClassVar[list[tuple[str, float]]] = []

    @filter.command("wait")
    async def wait(self, event: AstrMessageEvent) -> None:
        seconds = float(event.message_str.split()[1])

        @session_waiter(timeout=seconds)
        async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
            controller.stop()

        try:
            await waiter(event)
        except TimeoutError:
            Timed.outcomes.append((event.get_sender_id(), seconds))


async def test_timeouts_from_user_input_make_one_spec_not_one_per_value() -> None:
    async with PluginHost() as host:
        host.load(Timed)
        for i in range(2000):
            await host.send(f"/wait {10 + i / 1000}", sender=f"u{i}")
            await host.send("done", sender=f"u{i}")
        assert len(host.engine) == 0
        assert len(host.runtime._waiter_specs) == 1
        assert sum(1 for name in _engine_specs(host) if name.startswith("astrbot.waiter")) == 1


async def test_timeouts_differing_in_the_seventh_digit_both_run_and_keep_their_own() -> None:
    Timed.outcomes = []
    async with PluginHost() as host:
        host.load(Timed)
        assert await host.send("/wait 10.000001", sender="ann") == []
        assert await host.send("/wait 10.000002", sender="bob") == []  # no ValueError
        assert host.errors == []
        assert len(host.engine) == 2
        await host.advance(10.0000015)
        assert Timed.outcomes == [("ann", 10.000001)]
        await host.advance(0.000001)
        assert Timed.outcomes == [("ann", 10.000001), ("bob", 10.000002)]


@pytest.mark.parametrize("attrs", [{"tags": ["a"]}, {"room": "r1"}])
async def test_unhashable_and_hashable_attributes_both_release(attrs: dict[str, Any]) -> None:
    class Tagged(SessionFilter):
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

        def filter(self, event: AstrMessageEvent) -> str:
            return event.get_sender_id()

    @session_waiter(timeout=5)
    async def waiter(controller: SessionController, event: AstrMessageEvent) -> None:
        controller.stop()

    class P(Star):
        @filter.command("go")
        async def go(self, event: AstrMessageEvent) -> None:
            await waiter(event, Tagged(**attrs))

    async with PluginHost() as host:
        host.load(P)
        await host.send("/go", sender="a")
        await host.send("/go", sender="b")
        [kind] = host.runtime._filter_kinds.values()
        assert len(kind.live) == (2 if "tags" in attrs else 1)
        await host.send("x", sender="a")
        assert len(host.engine) == 1 and len(kind.live) == 1
        await host.advance(6)  # b times out
        assert len(host.engine) == 0 and not kind.live


def _engine_specs(host: PluginHost) -> list[str]:
    return [info.spec for info in host.engine.sessions()] + list(host.engine._specs)


class UserRoom(SessionFilter):
    """One session per member per room; the room is a per-call attribute (and the key
    names the event's chat, so a room's filter never claims another chat's message)."""

    def __init__(self, room: str) -> None:
        self.room = room

    def filter(self, event: AstrMessageEvent) -> str:
        return f"{self.room}|{event.get_group_id()}|{event.get_sender_id()}"


OPS = st.lists(st.tuples(st.sampled_from(["start", "say", "end"]),
                         st.sampled_from(["ann", "bo", "cy"]),
                         st.sampled_from(["r1", "r2", "r3", "r4"])), max_size=40)


@settings(max_examples=examples(100), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_per_call_filters_route_exactly_their_sessions_and_leave_nothing(
        ops: list[tuple[str, str, str]]) -> None:
    """Any sequence of rooms starting, talking and ending (a RoomFilter per call): a
    message reaches exactly the live session of its (user, room); the live filter
    instances are exactly the rooms with live sessions; nothing is left at the end."""
    import asyncio

    async def run() -> None:
        async with PluginHost() as host:
            rt = host.runtime
            got: list[tuple[str, str]] = []

            async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
                got.append((event.get_sender_id(), event.message_str))
                if event.message_str.startswith("end"):
                    controller.stop()

            live: set[tuple[str, str]] = set()
            tasks = []
            for op, user, room in ops:
                group = f"g-{room}"
                if op == "start":
                    if (user, room) in live:
                        continue
                    start = host.event("/start", user, group)
                    tasks.append(asyncio.ensure_future(
                        rt.wait(handler, start, UserRoom(room), 60, False, False)))
                    await asyncio.sleep(0)
                    live.add((user, room))
                else:
                    text = f"{op} {room}"
                    taken = await rt.dispatch(host.event(text, user, group))
                    assert taken == ((user, room) in live)
                    if taken:
                        assert got[-1] == (user, text)
                        if op == "end":
                            live.discard((user, room))
                [kind] = rt._filter_kinds.values() or [None]
                rooms = {r for _, r in live}
                assert kind is None or {f.room for f, _ in kind.live.values()} == rooms
                assert len(host.engine) == len(live)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        ended = sum(1 for o in outcomes if o is None)  # stopped by "end"
        closed = [o for o in outcomes if isinstance(o, WaiterEnded)]
        assert ended + len(closed) == len(tasks) and all(o.reason == "closed" for o in closed)
        assert len(closed) == len(live)

    asyncio.run(run())
