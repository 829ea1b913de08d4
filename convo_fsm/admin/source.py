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
import logging
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import attrs

from convo_fsm.admin.sqlpage import SqlitePages
from convo_fsm.session import Session
from convo_fsm.spec import Spec
from convo_fsm.step import Force, SetDeadline, step
from convo_fsm.storage.base import Store, StoreError, fingerprint
from convo_fsm.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from convo_fsm.admin.redispage import RedisPages
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
    async def page(self, *, text: str = "", spec: str = "", state: str = "", offset: int = 0,
                   limit: int = 50) -> Page: ...
    async def counts(self) -> tuple[int, Counter[tuple[str, str]]]: ...
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
logger = logging.getLogger("convo_fsm.admin")
T = TypeVar("T")


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


def state_counts(rows: Iterable[Session]) -> Counter[tuple[str, str]]:
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

    async def page(self, *, text: str = "", spec: str = "", state: str = "", offset: int = 0,
                   limit: int = 50) -> Page:
        return query(await self.rows(), text=text, spec=spec, state=state, offset=offset,
                     limit=limit)

    async def counts(self) -> tuple[int, Counter[tuple[str, str]]]:
        rows = list(await self.rows())
        return len(rows), state_counts(rows)

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


class _Kept(Generic[T]):
    """A value `read()` gives, kept: one older than `max_age` seconds is served while it is
    read again in the background; the first one, one older than 30 `max_age`, and one after
    `invalidate()` are awaited. Concurrent reads share one."""

    def __init__(self, read: Callable[[], Awaitable[T]], max_age: float,
                 monotonic: Callable[[], float]) -> None:
        self.read = read
        self.max_age = max_age
        self.monotonic = monotonic
        self.value: T | None = None
        self.taken = -_INF
        self.dirty = True
        self.refreshing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        age = self.monotonic() - self.taken
        if self.dirty or self.value is None or (self.refreshing is None
                                                and age >= 30 * self.max_age):
            await self._refresh()
        elif age >= self.max_age and self.refreshing is None:
            self.refreshing = asyncio.get_running_loop().create_task(self._refresh())
        assert self.value is not None
        return self.value

    def invalidate(self) -> None:
        self.dirty = True

    async def _refresh(self) -> None:
        async with self._lock:
            started = self.monotonic()
            if (self.taken >= started - self.max_age / 10 and not self.dirty
                    and self.value is not None):
                return  # someone refreshed it while we waited
            self.dirty = False
            try:
                self.value = await self.read()
                self.taken = started
            finally:
                self.refreshing = None


class StoreSource:
    """The sessions kept in a store (`convo-fsm serve --store URL`). Deadlines are on the
    wall clock (`WallClock`, what a stored engine uses). `specs` are the specs the store's
    sessions may name (for diagrams and `force`). One session is read fresh each time.

    For an SQLite file, each sessions page is one SQL read (`sqlpage.SqlitePages`: filtered,
    sorted and paginated by SQLite on a read-only connection, in a thread; no page reads
    every record, the first one after a start included), and the counts per state one
    GROUP BY. For a Redis store (`redispage.RedisPages`), a page reads the bodies of its
    candidates only (the `due` sorted set bounds them), and every key's spec and state come
    from a Lua scan (counts, spec/state filters). Another store, or a read either cannot do,
    cuts pages from a listing of every record (`store.list()`). Counts, spec/state maps and
    listings are kept: one older than `max_age` seconds is served while it is read again in
    the background, one older than 30 `max_age` (or after `invalidate()`) is read again
    first. Our own acts show in them at once."""

    kind = "store"

    def __init__(self, store: Store, specs: Iterable[Spec], *, max_age: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.specs = {s.name: s for s in specs}
        self.max_age = max_age
        self.clock = clock
        self.monotonic = monotonic
        self._sql: SqlitePages | None = None
        self._sql_tried = not isinstance(store, SqliteStore) or store.path == ":memory:"
        self._redis = _redis_pages(store)
        self._listing: _Kept[dict[str, Session]] = _Kept(self._read_listing, max_age, monotonic)
        self._counted: _Kept[tuple[int, Counter[tuple[str, str]]]] = _Kept(
            self._read_counts, max_age, monotonic)
        self._states: _Kept[dict[str, tuple[str, str]]] = _Kept(
            self._read_states, max_age, monotonic)

    def now(self) -> float:
        return self.clock()

    def _pages(self) -> SqlitePages | None:
        """The SQL reader of an SQLite file (None for another store, or a file it cannot
        read: an older schema, an SQLite without JSON)."""
        if not self._sql_tried:
            self._sql_tried = True
            assert isinstance(self.store, SqliteStore)
            try:
                pages = SqlitePages(self.store.path)
                pages.check()
                self._sql = pages
            except sqlite3.Error:
                self._sql = None
        return self._sql

    async def page(self, *, text: str = "", spec: str = "", state: str = "", offset: int = 0,
                   limit: int = 50) -> Page:
        if offset < 0 or limit < 1:  # the rule query() checks, before any SQL
            query((), offset=offset, limit=limit)
        pages = self._pages()
        if pages is None:
            if self._redis is not None:
                try:
                    states = await self._states.get() if spec or state else None
                    total, rows = await self._redis.page(
                        text=text, spec=spec, state=state, offset=offset, limit=limit,
                        states=states)
                    return Page(total, offset, tuple(rows))
                except self._redis.errors as exc:  # e.g. a server refusing Lua
                    logger.warning("admin: Redis page of %r failed (%s); cutting it from "
                                   "the listing", self.store, exc)
            return query(await self.rows(), text=text, spec=spec, state=state, offset=offset,
                         limit=limit)
        try:
            total, rows = await asyncio.to_thread(pages.page, text=text, spec=spec,
                                                  state=state, offset=offset, limit=limit)
        except sqlite3.Error as exc:  # a record whose body is not JSON: the listing skips it
            logger.warning("admin: SQL page of %r failed (%s); cutting it from the listing",
                           self.store, exc)
            return query(await self.rows(), text=text, spec=spec, state=state, offset=offset,
                         limit=limit)
        return Page(total, offset, tuple(rows))

    async def counts(self) -> tuple[int, Counter[tuple[str, str]]]:
        return await self._counted.get()

    async def _read_counts(self) -> tuple[int, Counter[tuple[str, str]]]:
        pages = self._pages()
        if pages is None:
            if self._redis is not None:
                try:
                    states = await self._states.get()
                    return len(states), Counter(states.values())
                except self._redis.errors as exc:  # e.g. a server refusing Lua
                    logger.warning("admin: Redis counts of %r failed (%s); counting the "
                                   "listing", self.store, exc)
            rows = list(await self.rows())
            return len(rows), state_counts(rows)
        c = await asyncio.to_thread(pages.counts)
        return sum(c.values()), c

    async def _read_states(self) -> dict[str, tuple[str, str]]:
        assert self._redis is not None
        return await self._redis.states()

    async def rows(self) -> Iterable[Session]:
        """Every stored session (the kept listing, with our own acts in it)."""
        return list((await self._listing.get()).values())

    async def _read_listing(self) -> dict[str, Session]:
        return {r.session.key: r.session for r in await self.store.list()}

    def invalidate(self) -> None:
        """Read the store again at the next listing and count (before serving them)."""
        self._listing.invalidate()
        self._counted.invalidate()
        self._states.invalidate()

    def _patch(self, key: str, session: Session | None) -> None:
        """Our own act, shown in the listing at once (without reading the store again); the
        counts are read again."""
        self._counted.invalidate()
        self._states.invalidate()
        listing = self._listing.value
        if listing is None:
            return
        if session is None:
            listing.pop(key, None)
        else:
            listing[key] = session

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


def _redis_pages(store: Store) -> RedisPages | None:
    try:
        from convo_fsm.storage.redis import RedisStore
    except ImportError:  # no redis-py: no Redis store either
        return None
    from convo_fsm.admin.redispage import RedisPages

    return RedisPages(store) if isinstance(store, RedisStore) else None


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


