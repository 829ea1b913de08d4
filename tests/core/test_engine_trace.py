"""The engine's optional trace hook reports every event, step, timer, reply and ending."""

from __future__ import annotations

import asyncio
from typing import Any

from convo_fsm import KEEP, STOP, Busy, Engine, Message, On, Spec, State, Timeout, VirtualClock
from convo_fsm.engine import TraceRecord

QUIZ = Spec(
    name="trace-quiz",
    initial="asking",
    states=[
        State("asking", enter=lambda c: c.reply("question"),
              on=[On("message", "done", guard=lambda c: c.text == "42"),
                  On("message", KEEP, action=lambda c: c.reply("wrong"))],
              timeout=Timeout(30, "reminded", warn_before=10, warn=lambda c: c.reply("hurry"))),
        State("reminded", on=[On("message", "done")], timeout=Timeout(30, STOP)),
        State("done", final=True),
    ],
)


def brief(r: TraceRecord) -> tuple[object, ...]:
    if r.kind == "step":
        return (r.at, "step", r.source, r.session.state if r.session else None, r.name)
    if r.kind == "reply":
        return (r.at, "reply", r.text)
    if r.kind == "result":
        return (r.at, "result", r.consumed)
    if r.kind in ("end", "stop"):
        return (r.at, r.kind, r.reason)
    if r.kind == "event":
        return (r.at, "event", getattr(r.event, "text", r.event))
    return (r.at, r.kind, r.session.state if r.session else None)


async def test_trace_reports_every_step_reply_timer_and_end_in_order() -> None:
    records: list[TraceRecord] = []
    clock = VirtualClock()
    engine = Engine(clock=clock, trace=records.append)
    await engine.start(QUIZ, "k")
    assert await engine.deliver("k", Message("41", sender="a"))
    assert not await engine.deliver("nobody", Message("41", sender="b"))
    await clock.advance(45)  # warning at 20, timeout to "reminded" at 30
    engine.force("k", "asking")
    engine.set_deadline("k", 50.0)
    await clock.advance(5)  # the new deadline fires the state's own timeout: to "reminded"
    assert [brief(r) for r in records] == [
        (0.0, "step", None, "asking", "start"),
        (0.0, "reply", "question"),
        (0.0, "event", "41"),
        (0.0, "step", "asking", "asking", "message"),
        (0.0, "reply", "wrong"),
        (0.0, "result", True),
        (0.0, "event", "41"),
        (0.0, "result", False),
        (20.0, "step", "asking", "asking", "warning"),
        (20.0, "reply", "hurry"),
        (30.0, "step", "asking", "reminded", "timeout"),
        (45.0, "force", "asking"),
        (45.0, "deadline", "asking"),
        (50.0, "step", "asking", "reminded", "timeout"),
    ]
    engine.stop("k", "admin")
    assert [brief(r) for r in records[-2:]] == [(50.0, "stop", "admin"), (50.0, "end", "admin")]
    assert records[-1].session is not None and records[-1].session.state == "reminded"


async def test_trace_reports_busy_drops_and_handed_back_inbox_events() -> None:
    gate = asyncio.Event()

    async def slow(ctx: object) -> None:
        await gate.wait()

    spec = Spec(name="trace-busy", initial="s", busy=Busy.QUEUE,
                states=[State("s", on=[On("message", KEEP, action=slow), On("bye", STOP)])])
    records: list[TraceRecord] = []
    engine = Engine(clock=VirtualClock(), trace=records.append)
    await engine.start(spec, "k")
    first = asyncio.ensure_future(engine.deliver("k", "one"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(engine.deliver("k", "two"))
    await asyncio.sleep(0)
    engine.stop("k")
    assert await first is True
    assert await second is False  # handed back, not swallowed
    results = [(r.event, r.consumed) for r in records if r.kind == "result"]
    assert results == [("two", False), ("one", True)]
    assert [r.kind for r in records if r.kind in ("stop", "end")] == ["stop", "end"]


async def test_no_trace_means_no_records_and_same_behaviour() -> None:
    engine = Engine(clock=VirtualClock())
    await engine.start(QUIZ, "k")
    assert await engine.deliver("k", "42")
    assert "k" not in engine
    assert engine.footprint() == {"sessions": 0, "busy": {}, "heap": 2, "waiting": (),
                                  "tasks": 0}


async def test_a_tracer_hook_gets_calls_and_restored_sessions_are_traced() -> None:
    from convo_fsm.engine.tracing import Tracer
    from convo_fsm.storage import MemoryStore

    class Calls(Tracer):
        def __init__(self) -> None:
            self.seen: list[tuple[str, str]] = []

        def step(self, key: str, at: float, session: Any, event: Any, name: str,
                 source: str | None) -> None:
            self.seen.append(("step", key))

        def adopt(self, key: str, session: Any) -> None:
            self.seen.append(("adopt", key))

    store = MemoryStore()
    first = Engine(clock=VirtualClock(), store=store)
    await first.start(QUIZ, "k")
    await first.close()
    calls = Calls()
    engine = Engine(clock=VirtualClock(), store=store, trace=calls)
    await engine.restore([QUIZ])
    assert calls.seen == [("adopt", "k")]  # no TraceRecord was built: the calls came as such
    await engine.close()
