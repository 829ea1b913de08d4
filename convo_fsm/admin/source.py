"""Where the admin pages read sessions from: a running engine, or a store.

Both sources give the same things: the live sessions (as `Session` records), one session,
the specs, the time now (on the clock the deadlines are on), and the three admin acts
(stop, force into a state, set the deadline). `EngineSource` acts through the engine's
public API; `StoreSource` acts on the stored records with compare-and-set on their revision,
like `convo-fsm sessions --stop/--force`, so a running engine takes the change at its next
commit for that key.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib
import math
import os
import sqlite3
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from convo_fsm.session import Session
from convo_fsm.spec import Spec
from convo_fsm.step import Force, SetDeadline, step
from convo_fsm.storage.base import Store, StoreError, fingerprint
from convo_fsm.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from convo_fsm.engine import Engine
    from convo_fsm.metrics import Metrics
    from convo_fsm.testing.transcript import Transcript

__all__ = ["AdminError", "EngineSource", "Page", "Source", "StoreSource", "load_specs", "query"]


class AdminError(ValueError):
    """An admin act cannot be done (no such session, undeclared state, bad deadline)."""


class Source(Protocol):
    kind: str

    def now(self) -> float: ...
    async def rows(self) -> Iterable[Session]: ...
    async def get(self, key: str) -> Session | None: ...
    def spec(self, name: str) -> Spec | None: ...
    def spec_names(self) -> list[str]: ...
    async def stop(self, key: str) -> None: ...
    async def force(self, key: str, state: str) -> Session | None: ...
    async def set_deadline(self, key: str, deadline: float | None) -> Session: ...
    def transcript(self, key: str) -> list[dict[str, Any]] | None: ...
    def recent(self) -> dict[str, Any] | None: ...


@attrs.frozen
class Page:
    """One page of the sessions list: `total` matches, `rows` from `offset` on."""

    total: int
    offset: int
    rows: tuple[Session, ...]


_INF = math.inf


def _order(s: Session) -> tuple[float, str]:
    return (_INF if s.deadline is None else s.deadline, s.key)


def query(rows: Iterable[Session], *, text: str = "", spec: str = "", state: str = "",
          offset: int = 0, limit: int = 50, heap_limit: int = 1000) -> Page:
    """Sessions whose key contains `text` (case-insensitive), of `spec`, in `state` (empty:
    any), by time left (no deadline last, then by key); `limit` of them from `offset`.
    One pass to filter and a bounded heap for the page (up to `heap_limit` rows from the
    top; deeper pages sort): no full sort of 100k sessions for the first pages."""
    if offset < 0 or limit < 1:
        raise AdminError(f"a page needs offset >= 0 and limit >= 1, got {offset}, {limit}")
    needle = text.casefold()
    if needle or spec or state:
        matches: Sequence[Session] = [
            s for s in rows
            if (not spec or s.spec == spec) and (not state or s.state == state)
            and (not needle or needle in s.key.casefold())]
    else:
        matches = rows if isinstance(rows, list) else list(rows)
    if offset + limit <= heap_limit:
        page = heapq.nsmallest(offset + limit, matches, key=_order)[offset:]
    else:  # a deep page: two stable sorts (by key, then by deadline) beat a big heap
        by_key = sorted(matches, key=_by_key)
        page = sorted(by_key, key=_by_deadline)[offset:offset + limit]
    return Page(len(matches), offset, tuple(page))


def _by_key(s: Session) -> str:
    return s.key


def _by_deadline(s: Session) -> float:
    return _INF if s.deadline is None else s.deadline


def counts(rows: Iterable[Session]) -> Counter[tuple[str, str]]:
    return Counter((s.spec, s.state) for s in rows)


class EngineSource:
    """A running engine. With `metrics` (the engine's `Metrics` trace hook) the list reads its
    map of live sessions (fast at 100k); without, `Engine.sessions()`. `transcript` (a
    `Transcript` the engine traces into) gives each session's transcript."""

    kind = "engine"

    def __init__(self, engine: Engine, *, metrics: Metrics | None = None,
                 transcript: Transcript | None = None, specs: Iterable[Spec] = ()) -> None:
        self.engine = engine
        self.metrics = metrics
        self.transcript_ = transcript
        self._extra = {s.name: s for s in specs}
        if metrics is not None and metrics.engine is None:
            metrics.bind(engine)

    def now(self) -> float:
        return self.engine.clock.now()

    async def rows(self) -> Iterable[Session]:
        if self.metrics is not None:
            self.metrics.resync()
            return list(self.metrics.live.values())
        engine = self.engine
        found = (engine.session(i.key) for i in engine.sessions())
        return [s for s in found if s is not None]

    async def get(self, key: str) -> Session | None:
        return self.engine.session(key)

    def spec(self, name: str) -> Spec | None:
        try:
            return self.engine.spec(name)
        except KeyError:
            return self._extra.get(name)

    def spec_names(self) -> list[str]:
        names = set(self._extra)
        if self.metrics is not None:
            names.update(self.metrics.started)
            names.update(s.spec for s in self.metrics.live.values())
        else:
            names.update(i.spec for i in self.engine.sessions())
        return sorted(n for n in names if self.spec(n) is not None)

    async def stop(self, key: str) -> None:
        if not self.engine.stop(key, "stopped"):
            raise AdminError(f"no live session on {key!r}")

    async def force(self, key: str, state: str) -> Session | None:
        session = self.engine.session(key)
        if session is None:
            raise AdminError(f"no live session on {key!r}")
        _check_state(self.engine.spec(session.spec), state)
        new = self.engine.force(key, state)
        return new if self.engine.session(key) is new else None

    async def set_deadline(self, key: str, deadline: float | None) -> Session:
        if self.engine.session(key) is None:
            raise AdminError(f"no live session on {key!r}")
        try:
            return self.engine.set_deadline(key, deadline)
        except ValueError as exc:  # a deadline the engine refuses (step.check_deadline)
            raise AdminError(str(exc)) from exc

    def transcript(self, key: str) -> list[dict[str, Any]] | None:
        if self.transcript_ is None:
            return None
        return self.transcript_.for_key(key).records[-500:]

    def recent(self) -> dict[str, Any] | None:
        return None if self.metrics is None else self.metrics.recent()


def _check_state(spec: Spec, state: str) -> None:
    if state not in spec.by_name:
        raise AdminError(f"spec {spec.name!r} has no state {state!r}; its states: "
                         f"{', '.join(spec.by_name)}")


class StoreSource:
    """The sessions kept in a store (`convo-fsm serve --store URL`). Deadlines are on the
    wall clock (`WallClock`, what a stored engine uses). The list is a snapshot of the
    store (for an SQLite file, its columns; else `store.list()`): one older than `max_age`
    seconds is still served while a new one is read in the background, one older than 30
    `max_age` is read again first; our own acts show in it at once. One session is read
    fresh each time. `specs` are the specs the store's sessions may name
    (for diagrams and `force`)."""

    kind = "store"

    def __init__(self, store: Store, specs: Iterable[Spec], *, max_age: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.specs = {s.name: s for s in specs}
        self.max_age = max_age
        self.clock = clock
        self.monotonic = monotonic
        self._snapshot: dict[str, Session] = {}
        self._taken = -_INF
        self._lock = asyncio.Lock()
        self._ro: sqlite3.Connection | None = None
        self._dirty = True
        self._refreshing: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self.clock()

    async def rows(self) -> Iterable[Session]:
        """The last listing (with our own acts in it). One older than `max_age` is served
        while a new one is read in the background (pages stay fast at 100k); the first one,
        one older than 30 `max_age`, and one after `invalidate()` are awaited."""
        age = self.monotonic() - self._taken
        if self._dirty or (self._refreshing is None and age >= 30 * self.max_age):
            await self._refresh()
        elif age >= self.max_age and self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return list(self._snapshot.values())

    async def _refresh(self) -> None:
        async with self._lock:
            started = self.monotonic()
            if self._taken >= started - self.max_age / 10 and not self._dirty:
                return  # someone refreshed it while we waited
            self._dirty = False
            try:
                fast = await asyncio.to_thread(self._sqlite_rows)
                listing = (fast if fast is not None
                           else [r.session for r in await self.store.list()])
                self._snapshot = {s.key: s for s in listing}
                self._taken = started
            finally:
                self._refreshing = None

    def _sqlite_rows(self) -> list[Session] | None:
        """For an SQLite file: the listing's columns only (key, spec, state, deadline),
        read on a read-only connection of our own, instead of decoding every record (5x
        faster at 100k). The rows carry no data or history: one session's page loads it."""
        if not isinstance(self.store, SqliteStore) or self.store.path == ":memory:":
            return None
        if self._ro is None:
            uri = "file:" + urllib.parse.quote(os.path.abspath(self.store.path)) + "?mode=ro"
            self._ro = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            found = self._ro.execute(
                "SELECT key, spec, state, json_extract(body, '$.deadline') FROM sessions")
            return [Session(key, spec, state, {}, deadline, None, 0, (), 0.0, 0.0)
                    for key, spec, state, deadline in found]
        except sqlite3.Error:
            return None  # an older schema, no JSON1: decode the records

    def invalidate(self) -> None:
        """Read the store again at the next listing (before serving it)."""
        self._dirty = True

    def _patch(self, key: str, session: Session | None) -> None:
        """Our own act, shown in the listing at once (without reading the store again)."""
        if session is None:
            self._snapshot.pop(key, None)
        else:
            self._snapshot[key] = session

    async def get(self, key: str) -> Session | None:
        stored = await self.store.load(key)
        return None if stored is None else stored.session

    def spec(self, name: str) -> Spec | None:
        return self.specs.get(name)

    def spec_names(self) -> list[str]:
        return sorted(self.specs)

    async def stop(self, key: str) -> None:
        stored = await self.store.load(key)
        if stored is None:
            raise AdminError(f"no live session on {key!r}")
        await self.store.delete(key, stored.rev)
        self._patch(key, None)

    def _spec_of(self, session: Session) -> Spec:
        spec = self.specs.get(session.spec)
        if spec is None:
            raise AdminError(f"spec {session.spec!r} of {session.key!r} is not known here: "
                             "name it with --spec MODULE:ATTR")
        return spec

    async def force(self, key: str, state: str) -> Session | None:
        stored = await self.store.load(key)
        if stored is None:
            raise AdminError(f"no live session on {key!r}")
        session = stored.session
        spec = self._spec_of(session)
        _check_state(spec, state)
        if session.state not in spec.by_name:  # stored by another version of the spec
            session = session._replace(state=spec.initial)
        result = step(spec, session, Force(state), self.now())
        if spec.by_name[state].final:
            await self.store.delete(key, stored.rev)
            self._patch(key, None)
            return None
        await self.store.save(result.session, fingerprint(spec), stored.rev)
        self._patch(key, result.session)
        return result.session

    async def set_deadline(self, key: str, deadline: float | None) -> Session:
        stored = await self.store.load(key)
        if stored is None:
            raise AdminError(f"no live session on {key!r}")
        session = stored.session
        spec = self._spec_of(session)
        try:  # the rule Engine.set_deadline follows too
            new = step(spec, session, SetDeadline(deadline), self.now()).session
        except ValueError as exc:
            raise AdminError(str(exc)) from exc
        await self.store.save(new, stored.fingerprint, stored.rev)
        self._patch(key, new)
        return new

    def transcript(self, key: str) -> list[dict[str, Any]] | None:
        return None

    def recent(self) -> dict[str, Any] | None:
        return None


def load_specs(refs: Iterable[str] = (), *, games: bool = True) -> dict[str, Spec]:
    """Specs by name: each `MODULE:ATTR` of `refs`, and the games' specs (if installed)."""
    out: dict[str, Spec] = {}
    for ref in refs:
        module_name, _, attribute = ref.partition(":")
        try:
            spec = getattr(importlib.import_module(module_name), attribute or "spec")
        except (ImportError, AttributeError) as exc:
            raise StoreError(f"--spec {ref!r}: {exc}") from exc
        if not isinstance(spec, Spec):
            raise StoreError(f"--spec {ref!r} is a {type(spec).__name__}, not a Spec")
        out[spec.name] = spec
    if games:
        try:
            import games as games_module
        except ImportError:
            return out
        for name in games_module.GAMES:
            spec = games_module.load(name)
            out.setdefault(spec.name, spec)
    return out


