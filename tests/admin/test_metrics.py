"""convo_fsm.metrics: the trace hook's counts, as Prometheus reads them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from admin_kit import QUIZ, Kit
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from convo_fsm import KEEP, STOP, Context, Engine, Message, On, Spec, State, VirtualClock
from convo_fsm.engine import TraceRecord
from convo_fsm.metrics import Histogram, Metrics, tee
from convo_fsm.storage import MemoryStore


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_counters_follow_what_the_engine_did() -> None:
    kit = Kit()
    for name in ("a", "b", "c", "d"):
        await kit.start(name)
    assert await kit.say("a", "hello")          # consumed (KEEP, replies)
    assert not await kit.say("a", "/back")      # "asking" has no "back": handed back
    assert await kit.say("b", "/crash")         # the action raises: error
    assert await kit.say("c", "42")             # final state
    await kit.clock.advance(50)                 # warnings of a, d
    await kit.clock.advance(10)                 # timeouts: a, d -> reminded
    kit.engine.force("local:user:a", "asking")
    kit.engine.set_deadline("local:user:a", None)
    m = scrape(kit.metrics)
    q = (("spec", "quiz"),)
    assert m[("convo_fsm_sessions_started_total", q)] == 4
    assert m[("convo_fsm_events_total", ())] == 4
    assert m[("convo_fsm_events_consumed_total", ())] == 3
    assert m[("convo_fsm_events_handed_back_total", ())] == 1
    assert m[("convo_fsm_warnings_total", q)] == 2
    assert m[("convo_fsm_timeouts_total", q)] == 2
    assert m[("convo_fsm_forced_total", q)] == 1
    assert m[("convo_fsm_deadlines_set_total", q)] == 1
    assert m[("convo_fsm_errors_total", q)] == 1
    assert m[("convo_fsm_sessions_ended_total", (("reason", "error"), ("spec", "quiz")))] == 1
    assert m[("convo_fsm_sessions_ended_total", (("reason", "final"), ("spec", "quiz")))] == 1
    assert m[("convo_fsm_live_sessions", (("spec", "quiz"), ("state", "asking")))] == 1
    assert m[("convo_fsm_live_sessions", (("spec", "quiz"), ("state", "reminded")))] == 1
    assert m[("convo_fsm_event_seconds_count", ())] == 4
    assert m[("convo_fsm_step_seconds_count", ())] == 3  # the handed-back one made no step
    assert m[("convo_fsm_replies_total", ())] == 3  # "you said hello" and two warnings
    recent = kit.metrics.recent()
    assert recent["started"] == {"quiz": 4} and recent["errors"] == {"quiz": 1}
    assert recent["ended"] == {("quiz", "error"): 1, ("quiz", "final"): 1}


async def test_inbox_depth_and_busy_keys_are_read_at_scrape() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait(ctx: Context) -> None:
        await gate

    spec = Spec(name="slow", initial="s",
                states=[State("s", on=[On("message", KEEP, action=wait)])],
                any_state=[On("exit", STOP)])
    metrics = Metrics()
    engine = Engine(clock=VirtualClock(), trace=metrics)
    metrics.bind(engine)
    await engine.start(spec, "local:user:x")
    tasks = [asyncio.create_task(engine.dispatch(Message(str(i), sender="x"))) for i in range(3)]
    for _ in range(10):
        await asyncio.sleep(0)
    m = scrape(metrics)
    assert m[("convo_fsm_busy_keys", ())] == 1
    assert m[("convo_fsm_inbox_events", ())] == 2 and m[("convo_fsm_inbox_events_max", ())] == 2
    gate.set_result(None)
    assert await asyncio.gather(*tasks) == [True, True, True]
    m = scrape(metrics)
    assert m[("convo_fsm_inbox_events", ())] == 0
    assert m[("convo_fsm_event_seconds_count", ())] == 3


async def test_sessions_restored_without_a_trace_record_are_counted() -> None:
    store = MemoryStore()
    first = Engine(store=store, clock=VirtualClock())
    for i in range(5):
        await first.start(QUIZ, f"k{i}")
    await first.close()
    metrics = Metrics()
    engine = Engine(store=store, clock=VirtualClock(), trace=metrics)
    metrics.bind(engine)
    await engine.restore([QUIZ])
    assert len(engine) == 5 and len(metrics.live) == 5  # restore is traced ("adopt")
    assert scrape(metrics)[("convo_fsm_live_sessions",
                            (("spec", "quiz"), ("state", "asking")))] == 5


def test_tee_calls_each_hook_in_order_and_costs_nothing_without_hooks() -> None:
    seen: list[str] = []
    assert tee() is None and tee(None, None) is None

    def one(record: TraceRecord) -> None:
        seen.append(record.kind)

    assert tee(None, one) is one
    both = tee(lambda r: seen.append("1" + r.kind), lambda r: seen.append("2" + r.kind))
    assert both is not None
    both(TraceRecord("stop", "k", 0.0))
    assert seen == ["1stop", "2stop"]
    with pytest.raises(TypeError, match="callable"):
        tee(42)  # type: ignore[arg-type]


def test_unknown_record_kinds_are_ignored_and_registries_are_separate() -> None:
    a, b = Metrics(), Metrics()
    a(TraceRecord("something-new", "k", 0.0))
    a(TraceRecord("event", "k", 0.0))
    assert a.events == 1 and b.events == 0
    assert a.registry is not b.registry
    assert scrape(b)[("convo_fsm_events_total", ())] == 0


def test_a_histogram_counts_into_cumulative_buckets() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        h.observe(value)
    family: Any = h.family("x_seconds", "x")
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("x_seconds_bucket", "0.1")] == 2
    assert samples[("x_seconds_bucket", "1.0")] == 3
    assert samples[("x_seconds_bucket", "+Inf")] == 4
    assert samples[("x_seconds_sum", None)] == pytest.approx(3.65) and h.count == 4
    with pytest.raises(ValueError, match="increasing"):
        Histogram((1.0, 0.5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 20.0), max_size=300), st.integers(1, 7))
def test_a_histogram_bucketed_in_bulk_counts_as_one_value_at_a_time(
        values: list[float], flushes: int) -> None:
    bounds = (0.001, 0.01, 0.5, 1.0, 2.5, 10.0)
    h = Histogram(bounds)
    step = max(1, len(values) // flushes)
    for i, value in enumerate(values):
        h.observe(value)
        if i % step == 0:
            h.flush()  # flushes at arbitrary points: the result must not depend on them
    expected = [0] * (len(bounds) + 1)
    for value in values:  # Prometheus' rule: a value goes in the first bucket with le >= it
        expected[next((i for i, b in enumerate(bounds) if value <= b), len(bounds))] += 1
    assert h.counts == expected and h.pending == []
    assert h.total == pytest.approx(sum(values)) and h.count == len(values)


async def test_latencies_wait_in_a_bounded_list_and_several_events_of_a_key_are_fifo(
        monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics()
    engine = Engine(clock=VirtualClock(), trace=metrics)
    metrics.bind(engine)
    await engine.start(QUIZ, "local:user:a")
    for _ in range(600):  # KEEP on "hello": one event, one step, one result each
        assert await engine.dispatch(Message("hello", sender="a"))
        assert len(metrics.event_seconds.pending) <= 256  # flushed every 256 events
    assert metrics.event_seconds.count == 600 and metrics.step_seconds.count == 600
    assert metrics.action_seconds.count == 600 and metrics._arrived == {}
    assert metrics.event_seconds.pending == []  # read: flushed
    # Two arrivals on one key before either is handled: first in, first out (the clock the
    # hook reads is set here, to know which arrival each latency was measured from).
    ticks = iter([1.0, 2.0, 5.0, 7.0, 11.0])
    monkeypatch.setattr("convo_fsm.metrics._perf", lambda: next(ticks))
    metrics.event("k", None)
    metrics.event("k", None)
    assert metrics._arrived["k"] == [1.0, 2.0]
    session = engine.session("local:user:a")
    assert session is not None
    metrics.step("k", 0.0, session, "e", "message", "asking")  # at 5.0
    metrics.result("k", "e", True)  # at 7.0
    assert metrics._arrived["k"] == 2.0  # the first one left, the second waits
    assert metrics.step_seconds.pending == [4.0]  # from the first arrival (1.0)
    assert metrics.event_seconds.pending == [6.0] and metrics.action_seconds.pending == [2.0]
    metrics.result("k", "e", True)  # at 11.0, no step of its own
    assert "k" not in metrics._arrived and metrics.event_seconds.pending == [6.0, 9.0]


def test_a_flush_from_another_thread_loses_no_value() -> None:
    import threading

    h = Histogram((0.5,))
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            h.flush()

    thread = threading.Thread(target=scraper)
    thread.start()
    try:
        for i in range(20_000):
            h.observe(0.25 if i % 2 else 0.75)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert h.counts == [10_000, 10_000]


async def test_without_timings_the_counters_still_count_and_histograms_stay_empty() -> None:
    metrics = Metrics(timings=False)
    engine = Engine(clock=VirtualClock(), trace=metrics)
    metrics.bind(engine)
    await engine.start(QUIZ, "local:user:a")
    assert await engine.dispatch(Message("hello", sender="a"))
    m = scrape(metrics)
    assert m[("convo_fsm_events_consumed_total", ())] == 1
    assert m[("convo_fsm_steps_total", (("spec", "quiz"),))] == 2
    assert m[("convo_fsm_event_seconds_count", ())] == 0
    assert m[("convo_fsm_action_seconds_count", ())] == 0
    assert metrics._arrived == {}
