"""Transcripts: what an engine did, as JSON lines, and a replay that finds the first divergence.

A `Transcript` is an engine `trace` hook (`Engine(trace=transcript)`): it turns each
`TraceRecord` into a small JSON object at once (so later changes to session data do not leak
into earlier lines). One line per thing the engine did, with the clock time `at`:

    {"at": 0.0, "kind": "step", "key": "local:user:alice", "on": "start", "from": null,
     "to": "asking", "spec": "quiz", "data": {}, "event": {"text": "/quiz", "sender": "alice"}}
    {"at": 0.0, "kind": "reply", "key": "local:user:alice", "text": "What is 6 x 7?"}
    {"at": 0.0, "kind": "event", "key": "local:user:alice", "event": {"text": "41", ...}}
    {"at": 20.0, "kind": "step", "key": "local:user:alice", "on": "warning", ...}
    {"at": 60.0, "kind": "end", "key": "local:user:alice", "reason": "timeout", ...}

Inputs are the lines a host caused: session starts (`step` with `"on": "start"`), events
(`event`), `stop`, `force` and `deadline`. Everything else (steps, timer firings, replies,
results, endings) is output. `replay` feeds the inputs to a fresh engine on a virtual clock,
at their recorded times, and compares every line the engine produces with the recording.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from convo_fsm.clock import VirtualClock
from convo_fsm.engine import Engine, TraceRecord
from convo_fsm.message import Message
from convo_fsm.spec import Spec

__all__ = [
    "Divergence",
    "ReplayResult",
    "Transcript",
    "TranscriptError",
    "areplay",
    "assert_replays",
    "encode",
    "replay",
]

INPUT_KINDS = frozenset({"event", "stop", "force", "deadline"})
_TIME_FIELDS = ("at", "deadline")
_EPSILON = 1e-6


class TranscriptError(ValueError):
    """A transcript line is not valid JSON, not a record, or cannot be replayed."""


def _time(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _snapshot(value: Any) -> Any:
    # A deep copy that is plain JSON; non-JSON values (a bug in the action that stored them)
    # are kept as their repr so recording never fails.
    return json.loads(json.dumps(value, default=repr))


def encode_event(event: Any) -> Any:
    """A raw event as JSON: a `Message` as an object, a str or None as itself."""
    if event is None or isinstance(event, str):
        return event
    if isinstance(event, Message):
        out: dict[str, Any] = {"text": event.text, "sender": event.sender}
        if event.group is not None:
            out["group"] = event.group
        if event.platform != "local":
            out["platform"] = event.platform
        return out
    return {"repr": repr(event)}


def decode_event(value: Any, line: int) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and "text" in value and "sender" in value:
        try:
            return Message(**value)
        except TypeError as exc:
            raise TranscriptError(f"line {line}: bad message {value!r}: {exc}") from None
    raise TranscriptError(f"line {line}: event {value!r} cannot be replayed "
                          "(only str and convo_fsm.Message events can)")


def encode(record: TraceRecord) -> dict[str, Any]:
    """One `TraceRecord` as the JSON object a transcript line holds."""
    out: dict[str, Any] = {"at": _time(record.at), "kind": record.kind, "key": record.key}
    kind, session = record.kind, record.session
    if kind == "step":
        assert session is not None
        out.update({"on": record.name, "from": record.source, "to": session.state})
        if record.source is None:  # a start (an event may be *named* start)
            out.update({"spec": session.spec, "data": _snapshot(session.data),
                        "event": encode_event(record.event)})
    elif kind == "event":
        out["event"] = encode_event(record.event)
    elif kind == "result":
        out["consumed"] = record.consumed
    elif kind == "reply":
        out["text"] = record.text
    elif kind in ("stop", "end"):
        out["reason"] = record.reason
        if kind == "end" and session is not None:
            out.update({"state": session.state, "data": _snapshot(session.data)})
    elif kind == "force":
        assert session is not None
        out.update({"from": record.source, "to": session.state})
    elif kind == "deadline":
        assert session is not None
        out["deadline"] = _time(session.deadline)
    return out


def is_input(line: Mapping[str, Any]) -> bool:
    kind = line.get("kind")
    return kind in INPUT_KINDS or (kind == "step" and line.get("from") is None)


class Transcript:
    """A recording: pass it as `Engine(trace=...)`; read, filter, save and load it."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = (),
                 lines: Iterable[int] | None = None) -> None:
        self.records: list[dict[str, Any]] = [dict(r) for r in records]
        # The file line of each record (for divergence reports); 1-based.
        self.line_numbers: list[int] = (list(lines) if lines is not None
                                        else list(range(1, len(self.records) + 1)))

    def __call__(self, record: TraceRecord) -> None:
        self.records.append(encode(record))
        self.line_numbers.append(len(self.records))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def for_key(self, key: str) -> Transcript:
        """Only the lines about `key` (one session's transcript)."""
        pairs = [(r, n) for r, n in zip(self.records, self.line_numbers, strict=True)
                 if r["key"] == key]
        return Transcript([r for r, _ in pairs], [n for _, n in pairs])

    def dumps(self) -> str:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def loads(cls, text: str) -> Transcript:
        records: list[dict[str, Any]] = []
        numbers: list[int] = []
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise TranscriptError(f"line {number}: not JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise TranscriptError(f"line {number}: expected a JSON object, got {raw[:60]!r}")
            for field, kind in (("kind", str), ("key", str), ("at", (int, float))):
                value = record.get(field)
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise TranscriptError(f"line {number}: field {field!r} missing or of the "
                                          f"wrong type: {value!r}")
            if not math.isfinite(record["at"]):
                raise TranscriptError(f"line {number}: time 'at' must be finite")
            records.append(record)
            numbers.append(number)
        return cls(records, numbers)

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TranscriptError(f"cannot read transcript {str(path)!r}: {exc}") from exc
        return cls.loads(text)


@attrs.frozen
class Divergence:
    """The first place a replay differs from the recording (`expected` None: an extra line)."""

    line: int | None
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None

    def __str__(self) -> str:
        where = "after the last line" if self.line is None else f"line {self.line}"
        return (f"{where}: expected {describe(self.expected)}, "
                f"got {describe(self.actual)}")


@attrs.frozen
class ReplayResult:
    divergence: Divergence | None
    replayed: int  # lines that matched
    actual: tuple[dict[str, Any], ...] = attrs.field(repr=False)

    @property
    def ok(self) -> bool:
        return self.divergence is None


def describe(record: Mapping[str, Any] | None) -> str:
    """A line in words: `reply 'Right!' to k at 3.0`."""
    if record is None:
        return "nothing (the transcript ends here)"
    kind, key, at = record.get("kind"), record.get("key"), record.get("at")
    if kind == "reply":
        what = f"reply {record.get('text')!r}"
    elif kind == "step":
        what = f"step {record.get('from')} -> {record.get('to')} on {record.get('on')!r}"
    elif kind == "end":
        what = f"end ({record.get('reason')}) in state {record.get('state')!r}"
        if "data" in record:
            what += f" with data {json.dumps(record['data'], ensure_ascii=False)}"
    elif kind == "result":
        what = "event consumed" if record.get("consumed") else "event handed back"
    elif kind == "event":
        what = f"event {json.dumps(record.get('event'), ensure_ascii=False)}"
    elif kind == "force":
        what = f"force {record.get('from')} -> {record.get('to')}"
    elif kind == "deadline":
        what = f"deadline set to {record.get('deadline')}"
    else:
        what = f"{kind} ({record.get('reason')})"
    return f"{what} for {key!r} at {at}"


def _same(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    if expected.keys() != actual.keys():
        return False
    for field, value in expected.items():
        other = actual[field]
        if field in _TIME_FIELDS and isinstance(value, int | float) and isinstance(
                other, int | float):
            if abs(value - other) > _EPSILON:
                return False
        elif value != other:
            return False
    return True


async def _settle(rounds: int = 8) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def _specs(spec: Spec | Mapping[str, Spec]) -> dict[str, Spec]:
    if isinstance(spec, Spec):
        return {spec.name: spec}
    if isinstance(spec, Mapping) and all(isinstance(s, Spec) for s in spec.values()):
        return {s.name: s for s in spec.values()}
    raise TypeError(f"replay needs a Spec or a mapping of Specs, got {type(spec).__name__}")


async def areplay(transcript: Transcript | str | Path, spec: Spec | Mapping[str, Spec]
                  ) -> ReplayResult:
    """Re-run a transcript's inputs on a fresh engine (virtual clock, recorded times) and
    compare everything it does with the recording. See `replay` for the sync form."""
    if not isinstance(transcript, Transcript):
        transcript = Transcript.load(transcript)
    specs = _specs(spec)
    expected = transcript.records
    if not expected:
        return ReplayResult(None, 0, ())
    clock = VirtualClock(start=expected[0]["at"])
    actual = Transcript()
    engine = Engine(clock=clock, send=lambda reply: None, trace=actual)
    tasks: list[asyncio.Future[Any]] = []
    cut = 0  # the lines produced by the replay itself, not by closing its engine

    async def advance_to(at: float) -> None:
        if at > clock.now():
            await clock.advance(at - clock.now())

    try:
        for record, line in zip(expected, transcript.line_numbers, strict=True):
            if not is_input(record):
                continue
            await advance_to(record["at"])
            key, kind = record["key"], record["kind"]
            if kind == "step":
                name = record.get("spec")
                if name not in specs:
                    raise TranscriptError(f"line {line}: the transcript starts spec {name!r}, "
                                          f"but replay was given {sorted(specs)}")
                data = record.get("data")  # copied below: actions must not edit the recording
                if not isinstance(data, dict):
                    raise TranscriptError(f"line {line}: a start needs its 'data' object")
                tasks.append(asyncio.ensure_future(engine.start(
                    specs[name], key, data=_snapshot(data),
                    event=decode_event(record.get("event"), line), replace=True)))
            elif kind == "event":
                event = decode_event(record.get("event"), line)
                tasks.append(asyncio.ensure_future(engine.deliver(key, event)))
            elif kind == "stop":
                engine.stop(key, str(record.get("reason")))
            elif key in engine:  # force / deadline on a live session, as recorded
                try:
                    if kind == "force":
                        engine.force(key, str(record.get("to")))
                    else:
                        deadline = record.get("deadline")
                        engine.set_deadline(key, None if deadline is None else float(deadline))
                except (ValueError, TypeError, LookupError) as exc:  # a state or time the
                    # spec cannot take: the recording is not of this spec, or was edited
                    raise TranscriptError(f"line {line}: cannot replay this {kind}: "
                                          f"{exc}") from None
            await _settle()
        await advance_to(expected[-1]["at"])
        await _settle()
        cut = len(actual.records)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.close()

    keys = {r["key"] for r in expected}
    produced = [r for r in actual.records[:cut] if r["key"] in keys]
    matched = 0
    for index, want in enumerate(expected):
        got = produced[index] if index < len(produced) else None
        if got is None or not _same(want, got):
            return ReplayResult(Divergence(transcript.line_numbers[index], want, got),
                                matched, tuple(produced))
        matched += 1
    if len(produced) > len(expected):
        return ReplayResult(Divergence(None, None, produced[len(expected)]), matched,
                            tuple(produced))
    return ReplayResult(None, matched, tuple(produced))


def replay(transcript: Transcript | str | Path, spec: Spec | Mapping[str, Spec]
           ) -> ReplayResult:
    """`areplay` from sync code (it runs its own event loop)."""
    return asyncio.run(areplay(transcript, spec))


def assert_replays(transcript: Transcript | str | Path, spec: Spec | Mapping[str, Spec]
                   ) -> None:
    """A recorded conversation as a regression test, in one line (sync tests)."""
    result = replay(transcript, spec)
    if result.divergence is not None:
        raise AssertionError(f"replay diverged at {result.divergence}")
