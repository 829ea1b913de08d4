"""session_waiter / SessionController semantics, AstrBot's exactly (anchors.md), on the
engine under a virtual clock."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import convo_fsm.compat.astrbot.api.message_components as Comp
from convo_fsm.compat.astrbot import PluginHost
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, filter
from convo_fsm.compat.astrbot.api.star import Star
from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    SessionController,
    SessionFilter,
    session_waiter,
)


def probe(host: PluginHost, handler: Any, *, timeout: float = 1.0, record: bool = False,
          session_filter: Any = None) -> list[tuple[str, Any, float]]:
    """Load a plugin whose `/probe` waits with `handler`; returns its outcomes list:
    ("returned", value, time) or ("raised", exception, time)."""
    outcomes: list[tuple[str, Any, float]] = []

    class Probe(Star):
        @filter.command("probe")
        async def start(self, event: AstrMessageEvent) -> None:
            waiter = session_waiter(timeout=timeout, record_history_chains=record)(handler)
            try:
                kwargs = {} if session_filter is None else {"session_filter": session_filter}
                value = await waiter(event, **kwargs)
            except Exception as exc:
                outcomes.append(("raised", exc, host.clock.now()))
            else:
                outcomes.append(("returned", value, host.clock.now()))

    host.load(Probe)
    return outcomes


# The probes of anchors.md: a 1 s session, a message at 0.2 s, then the handler's keep().
# Expected: when the waiter ends (seconds after the message) and how.
KEEP_PROBES = [
    ((0.5, True), "timeout", 0.5),
    ((0, True), "none", 0.0),
    ((0.5, False), "timeout", 1.3),
    ((-0.3, False), "timeout", 0.5),
    ((-5, False), "none", 0.0),
    (None, "timeout", 0.8),
]


@pytest.mark.parametrize(("keep", "how", "after"), KEEP_PROBES)
async def test_keep_timings_match_astrbot(keep: tuple[float, bool] | None, how: str,
                                          after: float) -> None:
    host = PluginHost()

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        if keep is not None:
            controller.keep(keep[0], reset_timeout=keep[1])

    outcomes = probe(host, handler)
    await host.send("/probe")
    await host.advance(0.2)
    await host.send("hello")
    if how == "none":
        assert [(o[0], o[1]) for o in outcomes] == [("returned", None)]
        assert outcomes[0][2] == pytest.approx(0.2)
    else:
        await host.advance(after - 1e-6)
        assert outcomes == []
        await host.advance(2e-6)
        assert len(outcomes) == 1
        kind, exc, when = outcomes[0]
        assert kind == "raised" and isinstance(exc, TimeoutError)
        assert when == pytest.approx(0.2 + after, abs=1e-5)
    assert len(host.engine) == 0
    await host.close()


async def test_clock_runs_from_keep_while_the_handler_works() -> None:
    host = PluginHost()
    gate: list[Any] = []

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        controller.keep(0.5, reset_timeout=True)
        gate.append(host.clock.now())

    outcomes = probe(host, handler)
    await host.send("/probe")
    await host.send("x")
    await host.advance(0.5)
    assert gate == [0.0] and [o[0] for o in outcomes] == ["raised"]
    assert outcomes[0][2] == pytest.approx(0.5)


async def test_start_event_is_not_delivered_and_later_events_are_in_order() -> None:
    host = PluginHost()
    seen: list[str] = []

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        seen.append(event.message_str)
        if event.message_str == "c":
            controller.stop()

    outcomes = probe(host, handler, timeout=10)
    await host.send("/probe")
    for text in "abc":
        await host.send(text)
    assert seen == ["a", "b", "c"]
    assert [(o[0], o[1]) for o in outcomes] == [("returned", None)]


async def test_history_chains_are_deep_copies_without_the_start_event() -> None:
    host = PluginHost()
    events: list[AstrMessageEvent] = []
    histories: list[list[list[Comp.BaseMessageComponent]]] = []

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        events.append(event)
        if event.message_str == "stop":
            histories.append(controller.get_history_chains())
            controller.stop()

    probe(host, handler, record=True)
    await host.send("/probe")
    await host.deliver(host.event("hi", components=[Comp.At(qq="7", name="bot"),
                                                    Comp.Plain("hi")]))
    await host.send("stop")
    [history] = histories
    assert history == [[Comp.At(qq="7", name="bot"), Comp.Plain("hi")], [Comp.Plain("stop")]]
    assert history[0][1] is not events[0].get_messages()[1]  # a copy, not the event's own


async def test_history_is_not_recorded_by_default() -> None:
    host = PluginHost()
    histories: list[Any] = []

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        histories.append(copy.copy(controller.get_history_chains()))
        controller.stop()

    probe(host, handler)
    await host.send("/probe")
    await host.send("x")
    assert histories == [[]]


async def test_stop_with_error_and_handler_exception_are_raised_from_the_waiter() -> None:
    host = PluginHost()

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        if event.message_str == "err":
            controller.stop(ValueError("told to fail"))
        else:
            raise KeyError("handler broke")

    outcomes = probe(host, handler)
    await host.send("/probe", sender="a")
    await host.send("err", sender="a")
    await host.send("/probe", sender="b")
    await host.send("x", sender="b")
    assert [(o[0], type(o[1]), str(o[1])) for o in outcomes] == [
        ("raised", ValueError, "told to fail"), ("raised", KeyError, "'handler broke'")]
    assert len(host.engine) == 0


async def test_session_filter_must_be_a_session_filter() -> None:
    host = PluginHost()

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        pass

    outcomes = probe(host, handler, session_filter="not a filter")
    await host.send("/probe")
    [(kind, exc, _)] = outcomes
    assert kind == "raised" and isinstance(exc, ValueError)
    assert "must be a SessionFilter" in str(exc)
    assert len(host.engine) == 0


async def test_zero_timeout_returns_at_once() -> None:
    host = PluginHost()

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        pass

    outcomes = probe(host, handler, timeout=0)
    await host.send("/probe")
    assert [(o[0], o[1]) for o in outcomes] == [("returned", None)]
    assert len(host.engine) == 0


async def test_a_broken_custom_filter_does_not_break_other_messages() -> None:
    class Fussy(SessionFilter):
        def filter(self, event: AstrMessageEvent) -> str:
            if event.message_str == "boom":
                raise RuntimeError("cannot key this")
            return event.unified_msg_origin

    host = PluginHost()
    seen: list[str] = []

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        seen.append(event.message_str)

    probe(host, handler, session_filter=Fussy(), timeout=10)
    await host.send("/probe")
    await host.send("boom")  # not routed (logged), the host carries on
    await host.send("fine")
    assert seen == ["fine"]


def test_keep_rejects_a_non_number() -> None:
    with pytest.raises(TypeError, match="timeout must be a number"):
        session_waiter(timeout="60")  # type: ignore[arg-type]


async def test_filter_kinds_are_per_class_and_attributes_not_per_call() -> None:
    class Prefixed(SessionFilter):
        def __init__(self, prefix: str) -> None:
            self.prefix = prefix

        def filter(self, event: AstrMessageEvent) -> str:
            return f"{self.prefix}:{event.get_sender_id()}"

    host = PluginHost()
    runtime = host.runtime
    event = host.event("x", sender="ann")
    keys = [runtime.key_for(event, Prefixed(p)) for p in ("a", "a", "b", "a")]
    assert keys[0] == keys[1] == keys[3] != keys[2]
    assert keys[0].endswith("|a:ann") and keys[2].endswith("|b:ann")
    assert len(runtime._filter_kinds) == 1  # one kind per filter class name
    seen: list[str] = []

    async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
        seen.append(event.message_str)

    probe(host, handler, session_filter=Prefixed("b"), timeout=10)
    await host.send("/probe", sender="ann")
    await host.send("routed", sender="ann")  # found through the "b" kind, not the "a" one
    assert seen == ["routed"]
