"""The store binding: how an engine with a store commits, reloads and restores sessions.

The engine calls `commit(key)` after each step's actions ran, while it still holds the
key's turn and before the event is reported consumed; `commit_soon(key)` for changes
made outside a turn (`stop`, `force`, `set_deadline`). A commit writes what the engine
now holds for the key (the live session, or its absence) with compare-and-set on the
store's revision:

- session data that the store would not give back as it is (`check_data`) is refused:
  the session ends with reason "error", naming the key path, instead of every later
  commit failing in silence;
- a `Conflict` means someone else (`convo-fsm sessions --stop/--force`) changed the
  record, and theirs wins (the engine reloads it);
- any other store error is reported to `on_error` and the log; the session goes on.

One engine owns a store: a store that can tell (`SqliteStore.claim`) refuses a second
engine, in this process or another, with a clear error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from convo_fsm.context import Reply
from convo_fsm.session import DataError, Session, check_data
from convo_fsm.spec import Spec
from convo_fsm.step import Policy, restore

from .base import Conflict, Store, fingerprint

__all__ = ["EngineSide", "StoreBinding"]

logger = logging.getLogger("convo_fsm.storage")


class EngineSide(Protocol):
    """What the binding needs of the engine."""

    def current(self, key: str) -> Session | None: ...

    def spec(self, name: str) -> Spec: ...

    def adopt(self, session: Session) -> None: ...

    def end(self, key: str, sid: int, reason: str) -> bool: ...

    def fail(self, key: str, sid: int, exc: BaseException, where: str) -> None: ...

    def report(self, key: str | None, exc: BaseException, what: str) -> None: ...

    def emit(self, reply: Reply) -> None: ...

    def spawn_write(self, key: str) -> None: ...

    def register(self, spec: Spec) -> None: ...

    async def start(self, spec: Spec, key: str, *, data: Mapping[str, object] | None = None,
                    ) -> Session: ...

    async def fire_due(self, now: float) -> int: ...

    def now(self) -> float: ...


class StoreBinding:
    def __init__(self, store: Store, engine: EngineSide) -> None:
        self.store = store
        self._engine = engine
        self._revs: dict[str, int] = {}  # the store's revision of each key we wrote or read
        self._lock = asyncio.Lock()
        self.closing = False
        claim = getattr(store, "claim", None)
        if claim is not None:
            claim()

    def release(self) -> None:
        self.closing = True
        release = getattr(self.store, "release", None)
        if release is not None:
            release()

    async def commit(self, key: str) -> None:
        engine = self._engine
        async with self._lock:
            if self.closing:
                return  # closing ends sessions in memory only: they stay stored
            session = engine.current(key)
            rev = self._revs.get(key)
            try:
                if session is not None:
                    check_data(session.data)
                    spec = engine.spec(session.spec)
                    self._revs[key] = await self.store.save(session, fingerprint(spec), rev)
                elif rev is not None:
                    del self._revs[key]
                    await self.store.delete(key, rev)
                return
            except DataError as exc:
                assert session is not None
                failed, error = session, exc  # type: Session | None, Exception
            except Conflict as exc:
                logger.warning("session %r: %s; taking the stored version", key, exc)
                failed, error = None, exc
            except Exception as exc:
                engine.report(key, exc, f"store {self.store!r} commit")
                return
        if failed is not None:
            engine.fail(key, failed.id, error, "commit (session data)")
            await self.commit(key)  # the session ended: its record goes
            return
        await self._reload(key)

    def commit_soon(self, key: str) -> None:
        self._engine.spawn_write(key)

    async def _reload(self, key: str) -> None:
        """Replace what we hold for `key` by the stored record (after a conflict)."""
        engine = self._engine
        try:
            stored = await self.store.load(key)
        except Exception as exc:
            engine.report(key, exc, f"store {self.store!r} load")
            return
        live = engine.current(key)
        if live is not None:
            engine.end(key, live.id, "stopped")
        self._revs.pop(key, None)
        if stored is not None:
            try:
                engine.spec(stored.session.spec)
            except KeyError:
                return
            self._revs[key] = stored.rev
            engine.adopt(stored.session)

    async def restore(self, specs: Iterable[Spec],
                      policies: Mapping[str, Policy] | None) -> list[Session]:
        engine = self._engine
        mine: dict[str, Spec] = {}
        for spec in specs:
            if not isinstance(spec, Spec):
                raise TypeError(f"restore() needs Specs, got {type(spec).__name__}")
            engine.register(spec)
            mine[spec.name] = spec
        now = engine.now()
        live: list[Session] = []
        resets: list[tuple[Spec, Session, int]] = []
        for stored in await self.store.list():
            owner = mine.get(stored.session.spec)
            key = stored.session.key
            if owner is None or engine.current(key) is not None:
                continue
            policy = Policy() if policies is None else policies.get(owner.name, Policy())
            decision = restore(owner, stored.session, stored.fingerprint == fingerprint(owner),
                               policy, now)
            if decision.why:
                logger.info("restoring session %r: %s: %s", key, decision.why, decision.kind)
            if decision.kind in ("keep", "moved"):
                self._revs[key] = stored.rev
                engine.adopt(decision.session)
                live.append(decision.session)
                if decision.kind == "moved":
                    await self.commit(key)
                continue
            if decision.kind == "reset":
                resets.append((owner, decision.session, stored.rev))
                continue
            try:
                await self.store.delete(key, stored.rev)
            except Exception as exc:
                engine.report(key, exc, f"store {self.store!r} delete")
                continue
            if decision.message is not None:
                engine.emit(Reply(key, decision.message))
        for spec, old, rev in resets:
            # The new session overwrites the old record (compare-and-set on its revision):
            # if starting fails, the old record is still there.
            self._revs[old.key] = rev
            try:
                live.append(await engine.start(spec, old.key, data=old.data))
            except Exception as exc:
                self._revs.pop(old.key, None)
                engine.report(old.key, exc, "restart (Policy on_missing='reset')")
        await engine.fire_due(now)
        return live
