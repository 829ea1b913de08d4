"""Tracing: what the engine tells an optional `trace` hook (transcripts, test invariants,
metrics). With no hook the engine holds a `Tracer`, whose methods do nothing, so the
engine never asks whether it is traced and pays one no-op call per record. A hook that
is itself a `Tracer` (a subclass, such as `convo_fsm.metrics.Metrics`) gets the calls
directly, with no `TraceRecord` built for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from convo_fsm.session import Session

__all__ = ["HookTracer", "TraceRecord", "Tracer"]


@attrs.frozen
class TraceRecord:
    """One thing the engine did, for an optional `trace` hook (transcripts, test invariants).

    `kind` is one of:
    - "event": `event` arrived for `key` (`deliver`, also via `dispatch`);
    - "result": that event was consumed (`consumed` True) or handed back (False);
    - "step": a change committed: `name` is the event name, "start", "timeout" or "warning",
      `source` the state left, `session` the new session, `event` the raw event. A start is
      the step with `source` None; a timer's step has `event` None (a user's event may be
      named "start" or "timeout" too);
    - "force" / "deadline": `Engine.force` / `Engine.set_deadline` committed `session`;
    - "adopt": a stored session was made live as it is (`restore`, or a reload after
      someone else changed its record);
    - "stop": the host called `Engine.stop` (`reason`);
    - "reply": a reply with `text` to `key` (caused by `event`);
    - "end": `session` ended with `reason`.
    `at` is the clock time.
    """

    kind: str
    key: str
    at: float
    session: Session | None = None
    event: Any = None
    name: str | None = None
    source: str | None = None
    text: str | None = None
    reason: str | None = None
    consumed: bool | None = None


class Tracer:
    """The null tracer: every record is dropped."""

    __slots__ = ()

    def event(self, key: str, event: Any) -> None:
        pass

    def result(self, key: str, event: Any, consumed: bool) -> None:
        pass

    def step(self, key: str, at: float, session: Session, event: Any, name: str,
             source: str | None) -> None:
        pass

    def change(self, kind: str, key: str, session: Session, source: str) -> None:
        """`force` or `deadline`."""

    def adopt(self, key: str, session: Session) -> None:
        pass

    def stop(self, key: str, session: Session, reason: str) -> None:
        pass

    def reply(self, key: str, event: Any, text: str) -> None:
        pass

    def end(self, key: str, session: Session, reason: str) -> None:
        pass


class HookTracer(Tracer):
    """Builds a `TraceRecord` for each call and hands it to `hook`, stamped by `now()`."""

    __slots__ = ("_hook", "_now")

    def __init__(self, hook: Callable[[TraceRecord], object], now: Callable[[], float]) -> None:
        self._hook = hook
        self._now = now

    def event(self, key: str, event: Any) -> None:
        self._hook(TraceRecord("event", key, self._now(), event=event))

    def result(self, key: str, event: Any, consumed: bool) -> None:
        self._hook(TraceRecord("result", key, self._now(), event=event, consumed=consumed))

    def step(self, key: str, at: float, session: Session, event: Any, name: str,
             source: str | None) -> None:
        self._hook(TraceRecord("step", key, at, session, event, name, source))

    def change(self, kind: str, key: str, session: Session, source: str) -> None:
        self._hook(TraceRecord(kind, key, self._now(), session, source=source))

    def adopt(self, key: str, session: Session) -> None:
        self._hook(TraceRecord("adopt", key, self._now(), session))

    def stop(self, key: str, session: Session, reason: str) -> None:
        self._hook(TraceRecord("stop", key, self._now(), session, reason=reason))

    def reply(self, key: str, event: Any, text: str) -> None:
        self._hook(TraceRecord("reply", key, self._now(), event=event, text=text))

    def end(self, key: str, session: Session, reason: str) -> None:
        self._hook(TraceRecord("end", key, self._now(), session, reason=reason))
