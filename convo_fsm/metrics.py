"""Prometheus metrics for an engine, from its `trace` hook.

    metrics = Metrics()
    engine = Engine(trace=tee(transcript, metrics))   # or trace=metrics
    metrics.bind(engine)                               # live sessions and inboxes at scrape
    metrics.registry                                   # a prometheus_client CollectorRegistry
    prometheus_client.generate_latest(metrics.registry)

`Metrics` is a `convo_fsm.engine.tracing.Tracer`: the engine calls its methods directly
(no `TraceRecord` built), and each call costs a few int and dict updates and no
prometheus_client call (counters are plain ints and dicts, turned into metric families
only when `/metrics` is scraped, through prometheus_client's custom-collector API;
latencies are appended to a list and bucketed in bulk every 256 events and at scrape).
It also takes `TraceRecord`s (`__call__`), so it can be one hook of `tee(...)`.
An engine built without a `trace` hook holds the null Tracer: metrics cost nil when unused.

It keeps its own registry (never the process-wide default one), so two engines, or two
tests, never share counters. It also keeps the live session of every key it was told
about (`live`): the admin pages and the live-sessions gauge read that map instead of
building `Engine.sessions()` (which at 100k sessions takes longer than a scrape may).
Sessions made live without a trace record (`Engine.restore`, a store conflict's reload)
are picked up by `resync()`, run whenever the count differs from the engine's.

Exported (prefix `convo_fsm_`):

- `events_total`: events delivered to a session key; `events_consumed_total` and
  `events_handed_back_total` (not consumed: the host's ordinary handlers get them);
- `sessions_started_total{spec}`, `sessions_ended_total{spec,reason}`,
  `errors_total{spec}` (sessions ended by an exception), `steps_total{spec}`;
- `timeouts_total{spec}`, `warnings_total{spec}` (timers fired), `forced_total{spec}`,
  `deadlines_set_total{spec}`, `replies_total`;
- `live_sessions{spec,state}` (gauge), `busy_keys` and `inbox_events` (gauge: events
  waiting behind a busy key, from `Engine.footprint()`), `inbox_events_max`;
- `event_seconds` (histogram: an event's arrival to its result, actions included),
  `step_seconds` (arrival to the committed step: classify, guards, step) and
  `action_seconds` (committed step to result: the step's actions and enter/exit),
  measured with `time.perf_counter` in the hook (wall time, whatever the engine's clock).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from convo_fsm.engine.tracing import Tracer
from convo_fsm.session import Session

if TYPE_CHECKING:
    from convo_fsm.engine import Engine, TraceRecord

__all__ = ["DEFAULT_BUCKETS", "Histogram", "Metrics", "tee"]

Hook = Callable[["TraceRecord"], object]
_perf = time.perf_counter

# Seconds: from 50 µs (a step with sync actions) to 10 s (an action calling out).
DEFAULT_BUCKETS: tuple[float, ...] = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                      0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def tee(*hooks: Hook | None) -> Hook | None:
    """One trace hook calling each of `hooks` in order (None entries are skipped).
    No hook: None, so `Engine(trace=tee())` costs nothing; one: that hook itself."""
    live = tuple(h for h in hooks if h is not None)
    for h in live:
        if not callable(h):
            raise TypeError(f"a trace hook must be callable, got {h!r}")
    if not live:
        return None
    if len(live) == 1:
        return live[0]

    def both(record: TraceRecord) -> None:
        for h in live:
            h(record)

    return both


class Histogram:
    """Bucket counts and a sum, exported as a Prometheus histogram (cheap to observe).

    `observe` only appends the value to `pending` (one C call; the hot paths call
    `pending.append` itself); `flush` sorts what is pending and counts it into the buckets
    with one bisection per bucket (Metrics flushes every 256 events and at each scrape,
    so pending values stay bounded). `counts`, `total` and `family` flush first."""

    __slots__ = ("_counts", "_lock", "_total", "bounds", "pending")

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"histogram bounds must be increasing and distinct: {bounds!r}")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self._total = 0.0
        self.pending: list[float] = []
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        self.pending.append(value)

    def flush(self) -> None:
        """Count the pending values into the buckets (safe against appends meanwhile, from
        this thread or another: only the values taken are removed)."""
        with self._lock:
            pending = self.pending
            n = len(pending)
            if not n:
                return
            values = sorted(pending[:n])
            del pending[:n]
            counts, low = self._counts, 0
            for i, bound in enumerate(self.bounds):  # a value <= bound goes in bucket i (le)
                high = bisect_right(values, bound, low)
                counts[i] += high - low
                low = high
            counts[-1] += n - low
            self._total += sum(values)

    @property
    def counts(self) -> list[int]:
        """Per bucket (not cumulative), the last one +Inf."""
        self.flush()
        return list(self._counts)

    @property
    def total(self) -> float:
        self.flush()
        return self._total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        self.flush()
        cumulative, running = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), self._counts, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=self._total)


class _Window:
    """Counts per wall-clock minute over the last `span` seconds (the admin's "last hour")."""

    def __init__(self, span: float, now: Callable[[], float]) -> None:
        self.span = span
        self.now = now
        self.minutes: deque[tuple[int, Counter[tuple[str, str, str]]]] = deque()

    def add(self, what: str, spec: str, detail: str = "") -> None:
        minute = int(self.now() // 60)
        minutes = self.minutes
        if not minutes or minutes[-1][0] != minute:
            minutes.append((minute, Counter()))
            oldest = minute - int(self.span // 60)
            while minutes and minutes[0][0] < oldest:
                minutes.popleft()
        minutes[-1][1][(what, spec, detail)] += 1

    def totals(self) -> Counter[tuple[str, str, str]]:
        since = (self.now() - self.span) // 60
        out: Counter[tuple[str, str, str]] = Counter()
        for minute, counts in self.minutes:
            if minute >= since:
                out.update(counts)
        return out


class Metrics(Tracer):
    """A trace hook that counts what an engine does; a Prometheus collector of those counts.

    `namespace` prefixes every metric name; `registry` defaults to a new
    `CollectorRegistry` of its own. `window` is the span of `recent()` (seconds, wall clock
    `wall`). `timings=False` leaves the three latency histograms empty and saves their cost
    (two clock reads and three observations an event).

    It is the engine's tracer interface too (`event`, `step`, `result`, `reply`, `change`,
    `stop`, `end`: `convo_fsm.engine.tracing.Tracer`), which `__call__` feeds from each
    `TraceRecord`; an engine that took a `Tracer` as its hook would call these directly."""

    def __init__(self, engine: Engine | None = None, *, registry: CollectorRegistry | None = None,
                 namespace: str = "convo_fsm", buckets: tuple[float, ...] = DEFAULT_BUCKETS,
                 window: float = 3600.0, wall: Callable[[], float] = time.time,
                 timings: bool = True) -> None:
        self.namespace = namespace
        self.timings = timings
        self.registry = CollectorRegistry(auto_describe=False) if registry is None else registry
        self.engine: Engine | None = None
        self.events = 0
        self.consumed = 0
        self.handed_back = 0
        self.replies = 0
        self.started: Counter[str] = Counter()
        self.steps: dict[str, int] = {}  # a plain dict: one of the hot path's updates
        self.timeouts: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.forced: Counter[str] = Counter()
        self.deadlines: Counter[str] = Counter()
        self.ended: Counter[tuple[str, str]] = Counter()
        self.event_seconds = Histogram(buckets)
        self.step_seconds = Histogram(buckets)
        self.action_seconds = Histogram(buckets)
        self._event_seconds = self.event_seconds.pending.append
        self._step_seconds = self.step_seconds.pending.append
        self._action_seconds = self.action_seconds.pending.append
        self.live: dict[str, Session] = {}
        self.recent_window = _Window(window, wall)
        self._arrived: dict[str, Any] = {}   # key -> perf_counter at arrival (a list if several)
        self._stepped: dict[str, float] = {}  # key -> perf_counter at an event's step
        self.registry.register(self)
        if engine is not None:
            self.bind(engine)

    def bind(self, engine: Engine) -> Metrics:
        """Read live sessions and inbox depths from `engine` at scrape time."""
        self.engine = engine
        self.resync()
        return self

    # -- the hook ----------------------------------------------------------------------------
    def __call__(self, record: TraceRecord) -> None:
        """The generic trace hook: each record goes to the method of its kind."""
        kind, key, session = record.kind, record.key, record.session
        if kind == "event":
            self.event(key, record.event)
        elif kind == "step":
            assert session is not None
            self.step(key, record.at, session, record.event, record.name or "",
                      record.source)
        elif kind == "result":
            self.result(key, record.event, bool(record.consumed))
        elif kind == "reply":
            self.reply(key, record.event, record.text or "")
        elif kind == "end":
            assert session is not None
            self.end(key, session, record.reason or "unknown")
        elif kind in ("force", "deadline"):
            assert session is not None
            self.change(kind, key, session, record.source or "")
        elif kind == "adopt":
            assert session is not None
            self.adopt(key, session)
        # "stop" is followed by its "end"; a kind a newer engine adds is ignored.

    # The engine's tracer interface (convo_fsm.engine.tracing.Tracer): the same calls, with
    # no TraceRecord built for them. The three an event makes (event, step, result) are the
    # hot path: plain int and exact-dict updates, one perf_counter read each, and a list
    # append per latency (the histograms bucket them in bulk; see Histogram.flush).
    def event(self, key: str, event: Any) -> None:
        self.events = n = self.events + 1
        if not n & 255:
            self._flush()
        if not self.timings:
            return
        now = _perf()
        before = self._arrived.setdefault(key, now)
        if before is not now:  # another event of this key in flight: first in, first out
            if type(before) is list:
                before.append(now)
            else:
                self._arrived[key] = [before, now]

    def step(self, key: str, at: float, session: Session, event: Any, name: str,
             source: str | None) -> None:
        spec = session.spec
        self.live[key] = session
        steps = self.steps
        try:
            steps[spec] += 1
        except KeyError:
            steps[spec] = 1
        if source is None:
            self.started[spec] += 1
            self.recent_window.add("started", spec)
        elif event is None:
            if name == "timeout":
                self.timeouts[spec] += 1
            elif name == "warning":
                self.warnings[spec] += 1
        if event is not None and self.timings:
            began = self._arrived.get(key)
            if began is not None:
                now = self._stepped[key] = _perf()
                self._step_seconds(now - (began[0] if type(began) is list else began))

    def result(self, key: str, event: Any, consumed: bool) -> None:
        if consumed:
            self.consumed += 1
        else:
            self.handed_back += 1
        if not self.timings:
            return
        now = _perf()
        arrived = self._arrived.pop(key, None)
        if type(arrived) is list:  # several events of one key in flight: first in, first out
            first = arrived.pop(0)
            self._arrived[key] = arrived if len(arrived) > 1 else arrived[0]
            arrived = first
        if arrived is not None:
            self._event_seconds(now - arrived)
        stepped = self._stepped.pop(key, None)
        if stepped is not None:
            self._action_seconds(now - stepped)

    def _flush(self) -> None:
        self.event_seconds.flush()
        self.step_seconds.flush()
        self.action_seconds.flush()

    def reply(self, key: str, event: Any, text: str) -> None:
        self.replies += 1

    def change(self, kind: str, key: str, session: Session, source: str) -> None:
        """`force` or `deadline`."""
        (self.forced if kind == "force" else self.deadlines)[session.spec] += 1
        self.live[key] = session

    def adopt(self, key: str, session: Session) -> None:
        """A stored session made live (restore, reload): counted live from now on."""
        self.live[key] = session

    def stop(self, key: str, session: Session, reason: str) -> None:
        return None  # its "end" follows

    def end(self, key: str, session: Session, reason: str) -> None:
        spec = session.spec
        self.ended[(spec, reason)] += 1
        self.recent_window.add("ended", spec, reason)
        live = self.live.get(key)
        if live is not None and live.id == session.id:
            del self.live[key]
        self._stepped.pop(key, None)
        if key not in self._arrived or self.engine is None:
            return
        # An event whose delivery raised (a classify error) leaves no result: forget the
        # arrivals of a key once nothing of it is busy any more.
        if key not in self.engine.footprint()["busy"]:
            self._arrived.pop(key, None)

    # -- reading -----------------------------------------------------------------------------
    def resync(self) -> bool:
        """Make `live` the bound engine's sessions again if their count differs (sessions
        restored, or reloaded after a store conflict, come without a trace record).
        True if it rebuilt the map."""
        engine = self.engine
        if engine is None or len(engine) == len(self.live):
            return False
        fresh: dict[str, Session] = {}
        for info in engine.sessions():
            session = engine.session(info.key)
            if session is not None:
                fresh[info.key] = session
        self.live = fresh
        return True

    def live_counts(self) -> Counter[tuple[str, str]]:
        """(spec, state) -> live sessions."""
        self.resync()
        return Counter((s.spec, s.state) for s in self.live.values())

    def recent(self) -> dict[str, Any]:
        """Within the window (last hour): `started` per spec, `ended` per (spec, reason),
        `errors` per spec."""
        started: Counter[str] = Counter()
        ended: Counter[tuple[str, str]] = Counter()
        errors: Counter[str] = Counter()
        for (what, spec, detail), n in self.recent_window.totals().items():
            if what == "started":
                started[spec] += n
            else:
                ended[(spec, detail)] += n
                if detail == "error":
                    errors[spec] += n
        return {"started": started, "ended": ended, "errors": errors}

    # -- the collector -------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        ns = self.namespace

        def counter(name: str, doc: str, values: Mapping[Any, int] | int,
                    labels: tuple[str, ...] = ()) -> CounterMetricFamily:
            if isinstance(values, int):
                return CounterMetricFamily(f"{ns}_{name}", doc, value=values)
            family = CounterMetricFamily(f"{ns}_{name}", doc, labels=list(labels))
            for label, n in sorted(values.items()):
                family.add_metric(list(label) if isinstance(label, tuple) else [label], n)
            return family

        yield counter("events", "Events delivered to a session key.", self.events)
        yield counter("events_consumed", "Events a session consumed.", self.consumed)
        yield counter("events_handed_back", "Events no session consumed (handed back).",
                      self.handed_back)
        yield counter("replies", "Replies sent.", self.replies)
        yield counter("sessions_started", "Sessions started.", self.started, ("spec",))
        yield counter("steps", "Steps committed (starts, events, timers).", self.steps,
                      ("spec",))
        yield counter("timeouts", "Timeouts fired.", self.timeouts, ("spec",))
        yield counter("warnings", "Timeout warnings fired.", self.warnings, ("spec",))
        yield counter("forced", "Sessions forced into a state.", self.forced, ("spec",))
        yield counter("deadlines_set", "Deadlines set by the host.", self.deadlines, ("spec",))
        yield counter("sessions_ended", "Sessions ended, by reason.", self.ended,
                      ("spec", "reason"))
        errors = Counter({spec: n for (spec, reason), n in self.ended.items()
                          if reason == "error"})
        yield counter("errors", "Sessions ended by an exception in a guard or action.",
                      errors, ("spec",))
        yield self.event_seconds.family(f"{ns}_event_seconds",
                                        "An event's arrival to its result, actions included.")
        yield self.step_seconds.family(f"{ns}_step_seconds",
                                       "An event's arrival to its committed step.")
        yield self.action_seconds.family(f"{ns}_action_seconds",
                                         "An event's committed step to its result (actions).")
        live = GaugeMetricFamily(f"{ns}_live_sessions", "Live sessions by spec and state.",
                                 labels=["spec", "state"])
        for (spec, state), n in sorted(self.live_counts().items()):
            live.add_metric([spec, state], n)
        yield live
        if self.engine is not None:
            busy = self.engine.footprint()["busy"]
            yield GaugeMetricFamily(f"{ns}_busy_keys", "Keys whose turn is taken.",
                                    value=len(busy))
            yield GaugeMetricFamily(f"{ns}_inbox_events", "Events waiting behind busy keys.",
                                    value=sum(busy.values()))
            yield GaugeMetricFamily(f"{ns}_inbox_events_max", "The longest inbox.",
                                    value=max(busy.values(), default=0))
