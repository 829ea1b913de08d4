"""Several worker processes on one Redis (or a Redis Cluster): keys partitioned over workers
with fenced leases, events on Redis Streams, and an ordinary `Engine` on every worker.

    # each worker process
    worker = FleetWorker(redis_client, [quiz], partitions=256)
    await worker.run()                      # until worker.drain() (SIGTERM: see serve())

    # the host (the bot's front: it receives chat events)
    host = FleetHost(redis_client, partitions=256, send=send_to_chat)
    async with host:
        consumed = await host.dispatch(message)   # as Engine.dispatch: True, or handed back

How it works:

1. A session key hashes to one of a fixed number of partitions (`partition.partition_of`).
   A host appends each event to its partition's stream (`XADD`; the entry id is the event
   id) and waits for its result on its own results stream.
2. Each partition is owned by one worker at a time through a lease (`SET PX`) whose value
   carries a fencing token (`INCR` on every acquisition). Every write a worker makes for a
   partition -- reading events (the consumer group's cursor moves), session compare-and-set,
   acknowledging an event with its result and replies, trimming -- is one Lua script that
   first checks the lease value, so a worker whose lease expired or moved (paused by GC,
   SIGSTOP, a VM freeze) changes nothing once it resumes, and learns it has lost the
   partition.
3. The owner reads its partitions' streams in batches and feeds each event to one ordinary
   in-process `Engine` (same routing, turns, busy policies, timers, guards, actions, error
   containment). The Engine's store is a `FencedStore`: its `save`/`delete` queue
   compare-and-set writes that a flusher sends, batched, through the fenced commit script,
   together with the acknowledgements and results of the events handled meanwhile. A result
   (consumed or handed back, and the replies the event caused) reaches the host only after
   the step is committed. On one server a flush is one script call for all partitions that
   also appends the results to the hosts' streams (atomically with the commit), and an idle
   worker waits for events with a plain `XREAD BLOCK` (which changes nothing, so needs no
   fencing), then reads only the streams that have news; a busy one commits what it handled
   and reads the next events in one call. On a Redis Cluster each partition
   is one call (its keys share a slot), results go to the partition's `out` stream and are
   forwarded after the commit, and an idle worker polls.
4. Exactly-once state transitions over at-least-once delivery: the session record keeps the
   id of the last event applied to it (written in the same compare-and-set as the session);
   an event that comes again (a crash or a takeover between commit and acknowledgement) and
   is not newer is not applied again: its result says `consumed` and `duplicate`.
5. Timers: deadlines are stored with the session in one time base for all workers
   (`SharedClock`: the loop's monotonic clock plus an offset measured from Redis `TIME`, never
   a worker's wall clock). The new owner of a partition calls `Engine.restore`, which re-arms
   the deadlines and fires at once those that fell due during the takeover.
6. Membership: workers heartbeat into a sorted set scored by the server's clock; partitions
   are assigned by rendezvous hashing over the live workers (a join or a leave moves only the
   partitions that must move). A worker hands over a partition it no longer should own after
   finishing its events; SIGTERM drains and releases everything; a killed worker's leases
   expire after `lease` seconds.

Keys of partition p share the hash tag `{p<p>}` (see `partition.Layout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import signal
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis

from convo_fsm.clock import AsyncioClock
from convo_fsm.context import Reply
from convo_fsm.engine import Engine, SessionExists, TraceRecord
from convo_fsm.message import DEFAULT_FILTERS, Filter, Message
from convo_fsm.session import Session
from convo_fsm.spec import EventError, Spec
from convo_fsm.storage import fleet_lua as lua
from convo_fsm.storage.base import Policy, Stored, StoreError, decode_session, encode_session
from convo_fsm.storage.partition import Layout, owner

__all__ = ["FencedStore", "FleetHost", "FleetWorker", "SharedClock", "decode", "encode"]

logger = logging.getLogger("convo_fsm.fleet")

Client = Any  # redis.asyncio.Redis or redis.asyncio.RedisCluster


# -- one time base ---------------------------------------------------------------------------
class SharedClock(AsyncioClock):
    """`AsyncioClock` scheduling with Redis `TIME` as the time: `now()` is the loop's monotonic
    clock plus an offset measured once from the server (the round trip's midpoint, best of a
    few). Every worker's deadlines are in the server's time base, whatever its own wall clock
    says. `skew` fakes a local clock that is off by that many seconds (tests): the offset
    absorbs it."""

    def __init__(self, offset: float, skew: float = 0.0,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(loop)
        self.offset = offset
        self.skew = skew

    def local(self) -> float:
        """This worker's own idea of the time (loop time, with the faked skew)."""
        return self.loop.time() + self.skew

    def now(self) -> float:
        return self.local() + self.offset

    def _loop_time(self, deadline: float) -> float:
        return deadline - self.offset - self.skew

    @classmethod
    async def measure(cls, client: Client, skew: float = 0.0, rounds: int = 5) -> SharedClock:
        clock = cls(0.0, skew)
        best: tuple[float, float] | None = None
        for _ in range(rounds):
            t0 = clock.local()
            sec, usec = await client.time()
            t1 = clock.local()
            cand = (t1 - t0, sec + usec / 1e6 - (t0 + t1) / 2)
            if best is None or cand < best:
                best = cand
        assert best is not None
        clock.offset = best[1]
        return clock


# -- events as they travel -------------------------------------------------------------------
def encode(event: object) -> str:
    """An event as a stream entry keeps it: a `Message` or a `str`."""
    if isinstance(event, Message):
        return json.dumps(["m", event.text, event.sender, event.group, event.platform],
                          ensure_ascii=False)
    if isinstance(event, str):
        return json.dumps(["t", str(event)], ensure_ascii=False)
    raise EventError(f"events sent to workers are Messages or strs, got {type(event).__name__}")


def decode(text: str) -> Message | str:
    raw = json.loads(text)
    if raw[0] == "m":
        return Message(raw[1], raw[2], raw[3], raw[4])
    return str(raw[1])


def _sid(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _after(entry_id: str) -> str:
    ms, seq = _sid(entry_id)
    return f"{ms}-{seq + 1}"


def _record(fp: str, last: str, session: Session) -> str:
    return f"{fp}\t{last}\t{encode_session(session)}"


def _parse(key: str, rev: str | None, body: str | None) -> tuple[Stored, str] | None:
    if rev is None or body is None:
        return None
    try:
        fp, last, text = body.split("\t", 2)
        return Stored(decode_session(text), fp, int(rev)), last
    except (StoreError, ValueError) as exc:
        logger.error("fleet: skipping unreadable session %r: %s", key, exc)
        return None


# -- a partition as its owner sees it --------------------------------------------------------
_LOADING, _OWNED, _DROPPED = "loading", "owned", "dropped"

# The event a worker's task is handling: (global id, key, event, kind).
_IN_HAND: contextvars.ContextVar[tuple[str, str, Any, str] | None] = contextvars.ContextVar(
    "convo_fsm_fleet_in_hand", default=None)


class _Part:
    __slots__ = ("acks", "commit_keys", "epoch", "forward_to", "handling", "ops", "p",
                 "read_from", "read_keys", "results", "state", "tail", "tasks", "valid_until",
                 "value")

    def __init__(self, p: int, layout: Layout) -> None:
        self.p = p
        self.read_keys = [layout.part(p, "lease"), layout.part(p, "ev")]
        self.commit_keys = [layout.part(p, n) for n in ("lease", "rev", "s", "ev", "out")]
        self.value = ""          # the lease value we hold ('' none)
        self.state = _DROPPED
        self.epoch = 0           # bumped on every takeover and drop: late results are ignored
        self.ops: list[str] = []  # session writes waiting for the flusher
        self.acks: list[str] = []  # events handled, to acknowledge with the writes
        self.results: list[list[Any]] = []  # [event id, host, payload] ('' '': timer replies)
        self.read_from = "0"     # '0'/id: pending events first; '>' new ones
        self.tail = ""           # the last entry of the stream we know of ('': not known)
        self.valid_until = 0.0   # local monotonic time our lease surely lasts until
        self.tasks: set[asyncio.Task[Any]] = set()
        self.handling: set[str] = set()  # entry ids in hand (a re-read of pending skips them)
        self.forward_to = ""     # trim `out` before this id at the next commit


# A flush: per partition (part, its epoch then, session writes, acknowledged ids, results).
_Batch = list[tuple[_Part, int, list[str], list[str], list[list[Any]]]]


class FencedStore:
    """The store protocol for the Engine of one fleet worker: records live in the hashes of
    their partition; writes are queued for the worker's fenced commit (they return the new
    revision at once: the worker is the only writer of a partition it owns, and the commit
    checks every revision again). Writes for a partition the worker does not own (any more)
    are not made."""

    def __init__(self, worker: FleetWorker) -> None:
        self._w = worker
        self.listing: set[int] = set()

    def _writable(self, key: str) -> _Part | None:
        part = self._w._parts.get(self._w.layout.of(key))
        return part if part is not None and part.state != _DROPPED else None

    async def load(self, key: str) -> Stored | None:
        layout, p = self._w.layout, self._w.layout.of(key)
        client = self._w.redis
        rev = await client.hget(layout.part(p, "rev"), key)
        body = await client.hget(layout.part(p, "s"), key)
        got = _parse(key, rev, body)
        return None if got is None else got[0]

    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        rev = (expect or 0) + 1
        part = self._writable(session.key)
        if part is not None:
            last = self._w._applied.get(session.key)
            part.ops += ["W", session.key, "" if expect is None else str(expect), str(rev),
                         _record(fingerprint, "" if last is None else last[1], session)]
            self._w._kick()
        return rev

    async def delete(self, key: str, expect: int | None = None) -> bool:
        part = self._writable(key)
        if part is not None and expect is not None:
            part.ops += ["D", key, str(expect)]
            self._w._kick()
        return expect is not None

    async def _records(self, ps: list[int]) -> list[tuple[Stored, str]]:
        """The records of partitions `ps`, with the last event applied to each."""
        w = self._w
        async with w.redis.pipeline(transaction=False) as pipe:
            for p in ps:
                pipe.hgetall(w.layout.part(p, "rev"))
                pipe.hgetall(w.layout.part(p, "s"))
            rows = await pipe.execute()
        w.round_trips += 1
        out = []
        for i in range(len(ps)):
            revs, bodies = rows[2 * i], rows[2 * i + 1]
            for key, rev in revs.items():
                got = _parse(key, rev, bodies.get(key))
                if got is not None:
                    out.append(got)
        return out

    async def due(self, now: float) -> list[Stored]:
        """The records of the partitions this worker owns that are due at `now`."""
        from convo_fsm.storage.base import next_due

        got = [s for s, _ in await self._records(sorted(self._w.owned()))
               if (d := next_due(s.session)) is not None and d <= now]
        return sorted(got, key=lambda s: next_due(s.session) or 0.0)

    async def list(self) -> list[Stored]:
        """The records of the partitions being taken over (`listing`: what `Engine.restore`
        brings back). Their last applied event ids are noted for the replay check, and the
        partitions become writable (not before: a late write of their previous life in this
        worker must not land)."""
        w = self._w
        ps = sorted(self.listing)
        records = await self._records(ps)
        for p in ps:
            part = w._parts[p]
            if part.state == _DROPPED and part.value:
                part.state = _LOADING
        out: list[Stored] = []
        for stored, last in records:
            if last:
                w._applied[stored.session.key] = (_sid(last), last)
            out.append(stored)
        return sorted(out, key=lambda s: s.session.key)

    async def close(self) -> None:
        """The worker closes the connection."""


# -- the worker ------------------------------------------------------------------------------
class FleetWorker:
    """One worker process of a fleet (see the module doc).

    `specs`: the specs it runs (all workers run the same ones). `partitions` must be the
    same for every worker and host. `lease` (s): how long a killed worker keeps its
    partitions; leases are renewed every `tick` (default lease/5). `batch`: events read per
    partition per read; `max_inflight`: events in hand at once. `poll` (s): on one server an
    idle worker waits for the next event with a blocking read (woken at once) and looks at
    its partitions again after `poll` at the latest (a partition it takes meanwhile waits
    that long); on a Cluster it polls, backing off up
    to `poll`. `on_error`, `filters`, `policies` go to the Engine / `restore`. `cluster`: the
    client is a RedisCluster (reads and commits are one script call per partition instead of
    one for all, and results are forwarded after their commit). `outbox_max`: the most
    entries (each the results or replies of one commit) a host's stream and the shared
    outbox keep when nobody reads them (the oldest go first).
    """

    def __init__(self, client: Client, specs: Iterable[Spec], *, worker_id: str | None = None,
                 prefix: str = "convo:", partitions: int = 256, lease: float = 5.0,
                 tick: float | None = None, batch: int = 256, max_inflight: int = 4096,
                 policies: Mapping[str, Policy] | None = None,
                 on_error: Callable[[str, BaseException], object] | None = None,
                 cluster: bool = False, skew: float = 0.0, poll: float = 0.05,
                 outbox_max: int = 100_000) -> None:
        self.redis = client
        self.specs = {s.name: s for s in specs}
        if not self.specs:
            raise ValueError("a FleetWorker needs at least one Spec")
        for s in self.specs.values():
            if not isinstance(s, Spec):
                raise TypeError(f"FleetWorker needs Specs, got {type(s).__name__}")
        self.id = worker_id or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        if "|" in self.id or "\t" in self.id:
            raise ValueError(f"a worker id cannot contain '|' or tabs: {self.id!r}")
        self.layout = Layout(prefix, partitions)
        if not lease > 0:
            raise ValueError(f"lease must be > 0 seconds, got {lease!r}")
        self.lease = lease
        self.tick = lease / 5 if tick is None else tick
        self.batch = batch
        self.max_inflight = max_inflight
        self.policies = dict(policies or {})
        self.cluster = cluster
        self.skew = skew
        self.poll = poll
        self.outbox_max = outbox_max
        self._on_error = on_error
        self.store = FencedStore(self)
        self._parts: dict[int, _Part] = {p: _Part(p, self.layout) for p in range(partitions)}
        self._applied: dict[str, tuple[tuple[int, int], str]] = {}  # key -> last event applied
        self._replies: dict[str, list[list[str]]] = {}
        self._dirty = asyncio.Event()
        self._room = asyncio.Event()
        self._inflight = 0
        self._stopping = False
        self._takeover_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._taking: set[int] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._releasing: set[int] = set()
        self.engine: Engine | None = None
        self.clock: SharedClock | None = None
        self._done = asyncio.Event()
        # figures
        self.events = 0
        self.duplicates = 0
        self.round_trips = 0
        self.takeovers = 0
        self.commits = 0
        self.lost = 0
        s_acq, s_ren, s_rel = lua.ACQUIRE, lua.RENEW, lua.RELEASE
        self._acquire = client.register_script(s_acq)
        self._renew = client.register_script(s_ren)
        self._release_s = client.register_script(s_rel)
        self._read = client.register_script(lua.READ)
        self._commit = client.register_script(lua.COMMIT)
        self._commit_many = client.register_script(lua.COMMIT_MANY)
        self._commit_read = client.register_script(lua.COMMIT_READ)
        self._journal = client.register_script(lua.JOURNAL)
        self._heartbeat = client.register_script(lua.HEARTBEAT)

    def owned(self) -> set[int]:
        """Partitions this worker owns now."""
        return {p for p, part in self._parts.items() if part.state != _DROPPED}

    def token(self, key: str) -> int | None:
        """The fencing token of the partition of `key`, if this worker owns it."""
        part = self._parts[self.layout.of(key)]
        return int(part.value.split("|", 1)[0]) if part.state != _DROPPED else None

    async def journal(self, key: str, text: str) -> bool:
        """Append `key TAB text TAB worker TAB token` to the journal of `key`'s partition, only
        if this worker still holds its lease: a fenced note an action can leave (tests record
        entering and leaving actions with it). False: not written (the lease is gone);
        `StoreError`: Redis did not answer (it may have been written)."""
        part = self._parts[self.layout.of(key)]
        if part.state == _DROPPED:
            return False
        token = part.value.split("|", 1)[0]
        try:
            ok = await self._journal(keys=[self.layout.part(part.p, "lease"),
                                           self.layout.part(part.p, "journal")],
                                     args=[part.value, f"{key}\t{text}\t{self.id}\t{token}"])
        except (aioredis.RedisError, OSError) as exc:
            raise StoreError(f"journal note for {key!r} not written: {exc}") from exc
        return bool(ok)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Measure the clock, build the Engine and start the worker's loops."""
        self.clock = await SharedClock.measure(self.redis, self.skew)
        self.engine = Engine(store=self.store, clock=self.clock, send=self._on_reply,
                             trace=self._on_trace, on_error=self._on_error)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._membership()),
                       loop.create_task(self._keep(self._reader, "reading")),
                       loop.create_task(self._flusher())]

    async def _keep(self, loop_fn: Callable[[], Any], what: str) -> None:
        """Run a loop of the worker again after a failure nobody expected (logged): a reader
        that died would leave its partitions leased and their events unread."""
        while not self._stopping:
            try:
                await loop_fn()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("fleet worker %s: %s failed; going on", self.id, what)
                for part in self._parts.values():
                    part.read_from, part.tail = "0", ""  # (what was read: pending, read again)
                await asyncio.sleep(self.poll)

    async def run(self) -> None:
        """`start`, then wait until `drain` is done."""
        if self.engine is None:
            await self.start()
        await self._done.wait()

    async def drain(self, timeout: float = 30.0) -> None:
        """Leave: stop reading, finish the events in hand, commit, release every lease, leave
        the member set, close the Engine (sessions stay stored)."""
        if self._stopping:
            await self._done.wait()
            return
        self._stopping = True
        try:
            parts = [part for part in self._parts.values() if part.state != _DROPPED]
            pending = [t for part in parts for t in part.tasks]
            if pending:
                await asyncio.wait(pending, timeout=timeout)
            await self._flush_now()
            for part in parts:
                await self._give_up(part, release=True)
            with contextlib.suppress(aioredis.RedisError):
                await self._heartbeat(keys=[self.layout.members],
                                      args=[self.id, self._ttl_ms(), "1"])
        finally:
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=5.0)
            if self.engine is not None:
                await self.engine.close()
            self._done.set()

    def _ttl_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    async def _many(self, script: Any, calls: list[tuple[list[str], list[str]]]) -> list[Any]:
        """One script called for several partitions in one round trip: a pipeline on one
        server; on a Cluster (whose client pipelines no scripts) concurrent calls, one per
        partition. A call's error comes back as its result; a lost connection raises."""
        self.round_trips += 1
        if not self.cluster:
            async with self.redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    await script(keys=keys, args=args, client=pipe)
                return list(await pipe.execute(raise_on_error=False))
        got = await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls),
                                   return_exceptions=True)
        for r in got:
            if isinstance(r, (aioredis.ConnectionError, OSError)):
                raise r
        return list(got)

    # -- membership and leases -----------------------------------------------------------
    async def _membership(self) -> None:
        while not self._stopping:
            try:
                await self._tick()
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("fleet worker %s: membership tick failed: %s", self.id, exc)
            except Exception:
                logger.exception("fleet worker %s: membership tick failed", self.id)
            await asyncio.sleep(self.tick)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        ttl = self._ttl_ms()
        members = self.layout.members
        live = await self._heartbeat(keys=[members], args=[self.id, str(ttl * 2 // 3), "0"])
        self.round_trips += 1
        live = set(live) | {self.id}
        now = loop.time()
        # Leases we can no longer be sure of (a pause, Redis away): give them up first.
        for part in self._parts.values():
            if part.state != _DROPPED and now > part.valid_until:
                logger.warning("fleet worker %s: lease of partition %d may have expired",
                               self.id, part.p)
                await self._lose(part)
        held = [part for part in self._parts.values() if part.state != _DROPPED]
        if held:
            sent = loop.time()
            got = await self._many(self._renew, [([self.layout.part(part.p, "lease")],
                                                   [part.value, str(ttl)]) for part in held])
            for part, ok in zip(held, got, strict=True):
                if ok == 1:
                    part.valid_until = sent + self.lease * 0.8
                elif not isinstance(ok, Exception):
                    await self._lose(part)
        desired = {p for p in self._parts if owner(p, live) == self.id}
        if self._stopping:
            return
        for part in self._parts.values():
            if part.state == _OWNED and part.p not in desired and part.p not in self._releasing:
                self._releasing.add(part.p)
                asyncio.get_running_loop().create_task(self._hand_over(part))
        wanted = [self._parts[p] for p in sorted(desired)
                  if self._parts[p].state == _DROPPED and p not in self._releasing
                  and p not in self._taking]
        if not wanted:
            return
        sent = loop.time()
        got = await self._many(self._acquire, [
            ([self.layout.part(part.p, "lease"), self.layout.part(part.p, "fence"),
              self.layout.part(part.p, "ev")], [self.id, str(ttl), part.value])
            for part in wanted])
        taken = []
        for part, res in zip(wanted, got, strict=True):
            if isinstance(res, Exception) or res[0] == 0:
                continue
            part.value = res[1]
            part.valid_until = sent + self.lease * 0.8
            taken.append(part)
        if taken:
            await self._take_over(taken)

    async def _take_over(self, parts: list[_Part]) -> None:
        assert self.engine is not None
        async with self._takeover_lock:
            for part in parts:
                # It stays dropped (writes ignored) until `FencedStore.list` has read it, so a
                # late write of its previous life cannot land in this one.
                part.epoch += 1
                part.read_from = "0"
                part.tail = ""
                part.ops.clear()
                part.acks.clear()
                part.results.clear()
                self._taking.add(part.p)
            self.store.listing = {part.p for part in parts}
            try:
                await self._forward_leftovers(parts)
                await self.engine.restore(self.specs.values(), self.policies)
            except (aioredis.RedisError, OSError, StoreError) as exc:
                logger.warning("fleet worker %s: takeover failed: %s", self.id, exc)
                for part in parts:
                    await self._lose(part)
                return
            finally:
                self.store.listing = set()
                self._taking.difference_update(part.p for part in parts)
            for part in parts:
                if part.state == _LOADING:
                    part.state = _OWNED
                    self.takeovers += 1
            self._room.set()  # (a reader with nothing to read waits on it: read them now)
            logger.info("fleet worker %s took partitions %s", self.id,
                        [(p.p, p.value) for p in parts])

    async def _hand_over(self, part: _Part) -> None:
        """Another live worker should own `part`: finish its events, commit, release."""
        try:
            epoch = part.epoch
            part.state = _LOADING  # no new reads (the reader reads owned partitions only)
            if part.tasks:
                await asyncio.wait(list(part.tasks), timeout=self.lease)
            await self._flush_now()
            if part.epoch == epoch:
                await self._give_up(part, release=True)
        finally:
            self._releasing.discard(part.p)

    async def _end_tasks(self, part: _Part) -> None:
        """Wait until the tasks of dropped `part` have ended. `Engine.stop` cut their actions
        short with one cancellation; one that lost it (absorbed inside a client call: an
        action's own Redis call that was answered as the cancel came returns normally, the
        action goes on -- seen with redis-py 8.1 on Python 3.11) would keep its key's turn in
        this worker's Engine, and when the partition comes back to this worker every later
        event of that key would queue behind it, unanswered, forever. So each tick a task
        still running is cancelled again (the fleet owns these tasks), for up to `lease`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.lease
        left: set[asyncio.Task[Any]] = set(part.tasks)
        while left:
            _, left = await asyncio.wait(left, timeout=self.tick)
            if not left:
                return
            if loop.time() >= end:
                logger.error("fleet worker %s: %d task(s) of partition %d ignore cancellation; "
                             "their keys stay busy until they end", self.id, len(left), part.p)
                return
            for task in left:
                task.cancel()

    async def _lose(self, part: _Part) -> None:
        """The lease of `part` is gone (or unsure): drop it without writing anything."""
        self.lost += 1
        await self._give_up(part, release=False)

    async def _give_up(self, part: _Part, *, release: bool) -> None:
        """Forget `part`: its sessions leave the Engine (running actions cancelled, nothing
        written), late results are ignored; with `release`, the lease is deleted."""
        value = part.value
        part.state = _DROPPED
        part.epoch += 1
        part.ops.clear()
        part.acks.clear()
        part.results.clear()
        engine = self.engine
        if engine is not None:
            of = self.layout.of
            for info in engine.sessions():
                if of(info.key) == part.p:
                    engine.stop(info.key, "moved")
        for key in [k for k in self._applied if self.layout.of(k) == part.p]:
            del self._applied[key]
        if part.tasks:
            await self._end_tasks(part)
        if release and value:
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self._release_s(keys=[self.layout.part(part.p, "lease")], args=[value])
            part.value = ""

    # -- reading events ------------------------------------------------------------------
    async def _reader(self) -> None:
        """Read the owned partitions' new events, in batches. While reads find several events
        it reads again at once (READ skips, cheaply, the partitions whose stream did not move).
        Otherwise, on one server, it first waits (a plain XREAD BLOCK from each stream's
        last known entry: it changes nothing, so it needs no fencing, and costs Redis
        little) for the streams that have news, then reads those alone through the fenced
        READ: an idle worker is woken at once."""
        idle = 0.001
        busy = False  # the last read found several events: read again at once, no wait
        while not self._stopping:
            parts = [part for part in self._parts.values() if part.state == _OWNED]
            if not parts or self._inflight >= self.max_inflight:
                self._room.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._room.wait(), self.poll)
                continue
            if not self.cluster and not busy:
                unknown = [part for part in parts if part.read_from != ">" or not part.tail]
                if unknown:
                    parts = unknown  # (just taken: their pending events, then their tails)
                else:
                    try:
                        news = await self.redis.xread(
                            {part.read_keys[1]: part.tail for part in parts}, count=1,
                            block=max(1, int(self.poll * 1000)))
                        self.round_trips += 1
                    except (aioredis.RedisError, OSError) as exc:
                        logger.warning("fleet worker %s: waiting for events failed: %s",
                                       self.id, exc)
                        await asyncio.sleep(self.poll)
                        continue
                    streams = {stream for stream, _ in news or ()}
                    parts = [part for part in parts if part.read_keys[1] in streams
                             and part.state == _OWNED]
                    if not parts:
                        continue
            try:
                results = await self._read_batch(parts, commit=busy)
            except (aioredis.RedisError, OSError) as exc:
                # The read may have happened (its events are now pending for us, unseen):
                # read the pending ones again.
                logger.warning("fleet worker %s: read failed: %s", self.id, exc)
                for part in parts:
                    part.read_from = "0"
                await asyncio.sleep(self.poll)
                continue
            got = 0
            for part, epoch, entries in results:
                if part.epoch != epoch or part.state != _OWNED:
                    continue  # dropped meanwhile: what we read stays pending for the next owner
                if entries == -1:
                    await self._lose(part)
                    continue
                if isinstance(entries, str):  # no new events: the stream's last entry
                    part.tail = entries
                    continue
                if part.read_from != ">":
                    part.read_from = entries[-1][0] if entries else ">"
                elif entries:
                    part.tail = entries[-1][0]
                for entry_id, fields in entries:
                    self._begin(part, entry_id, fields)
                    got += 1
            # More than one event at once: more are likely coming, read again at once. One
            # alone (light load): wait for the next, leaving Redis and the loop to its commit.
            busy = got > 1
            if got or not self.cluster:
                idle = 0.001
                await asyncio.sleep(0)
            else:  # (a Cluster polls: a multi-stream XREAD spans slots)
                await asyncio.sleep(idle)
                idle = min(idle * 2, self.poll)

    def _read_call(self, parts: list[_Part]) -> tuple[list[str], list[str]]:
        count = str(max(1, min(self.batch, (self.max_inflight - self._inflight) // len(parts)
                               + 1)))
        keys: list[str] = []
        cursors: list[str] = []
        for part in parts:
            keys += part.read_keys
            cursors += [part.value, part.read_from, part.tail]
        return keys, [count, json.dumps(cursors)]

    async def _read_batch(self, parts: list[_Part], *, commit: bool = False
                          ) -> list[tuple[_Part, int, Any]]:
        """READ `parts`; with `commit` (one server), what is waiting to be committed goes in
        the same call, first (COMMIT_READ: a busy cycle is one round trip)."""
        epochs = [part.epoch for part in parts]
        if not self.cluster:
            keys, args = self._read_call(parts)
            if commit:
                async with self._flush_lock:  # (a partition's commits stay in order)
                    batch = self._take_batch()
                    if batch:
                        ckeys, cargs = self._commit_call(batch)
                        try:
                            codes, res = await self._commit_read(
                                keys=[*ckeys, *keys],
                                args=[str(len(ckeys)), str(len(cargs)), *cargs, *args])
                        except (aioredis.RedisError, OSError) as exc:
                            await self._commit_failed(batch, exc)
                            raise
                        self.round_trips += 1
                        await self._committed(batch, list(codes), [])
                        return [(part, epoch, r) for part, epoch, r
                                in zip(parts, epochs, res, strict=True)]
            res = await self._read(keys=keys, args=args)
        else:
            count = self._read_call(parts[:1])[1][0]
            got = await self._many(self._read, [
                (part.read_keys, [count, json.dumps([part.value, part.read_from, part.tail])])
                for part in parts])
            for r in got:
                if isinstance(r, Exception):
                    raise r
            res = [r[0] for r in got]
            self.round_trips -= 1  # (counted by _many)
        self.round_trips += 1
        return [(part, epoch, r) for part, epoch, r in zip(parts, epochs, res, strict=True)]

    def _begin(self, part: _Part, entry_id: str, fields: Any) -> None:
        if entry_id in part.handling:
            return
        part.handling.add(entry_id)
        try:
            got = json.loads(fields[1]) if fields and fields[0] == "m" else {}
            if not isinstance(got, dict):
                got = {}
        except ValueError:
            got = {}
        task = asyncio.get_running_loop().create_task(self._handle(part, part.epoch, entry_id,
                                                                   got))
        self._inflight += 1
        part.tasks.add(task)
        task.add_done_callback(lambda t: self._finished(part, entry_id, t))

    def _finished(self, part: _Part, entry_id: str, task: asyncio.Task[Any]) -> None:
        part.tasks.discard(task)
        part.handling.discard(entry_id)
        self._inflight -= 1
        self._room.set()

    async def _handle(self, part: _Part, epoch: int, eid: str, fields: dict[str, str]) -> None:
        engine = self.engine
        assert engine is not None
        kind, key, host = fields.get("t", ""), fields.get("k", ""), fields.get("h", "")
        payload: dict[str, Any]
        last = self._applied.get(key)
        replies: list[list[str]] = []
        event: Any = None
        if not fields or not key:
            payload = {"c": False, "x": "unreadable event", "k": "event"}
        elif last is not None and _sid(eid) <= last[0]:
            self.duplicates += 1
            payload = {"c": True, "dup": True}
        else:
            self.events += 1
            gid = f"{part.p}/{eid}"  # entry ids are per stream: the partition makes them unique
            self._replies[gid] = replies
            token = None
            try:
                event = decode(fields["e"]) if fields.get("e") else None
                # What the Engine does in this task (a step, replies) is this event's.
                token = _IN_HAND.set((gid, key, event, kind))
                payload = await self._apply(engine, kind, key, event, gid, fields)
            except EventError as exc:
                payload = {"c": False, "x": str(exc), "k": "event"}
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                payload = {"c": False, "x": f"bad {kind!r} command: {exc!r}", "k": "event"}
            except Exception as exc:
                logger.exception("fleet worker %s: event %s for %r failed", self.id, eid, key)
                payload = {"c": False, "x": repr(exc), "k": "error"}
            finally:
                if token is not None:
                    _IN_HAND.reset(token)
                self._replies.pop(gid, None)
        if replies:
            payload["r"] = replies
        if part.epoch == epoch and part.state != _DROPPED:
            part.acks.append(eid)
            part.results.append([eid, host, payload])
            self._kick()

    async def _apply(self, engine: Engine, kind: str, key: str, event: Any, gid: str,
                     fields: dict[str, str]) -> dict[str, Any]:
        if kind == "d":
            consumed = await engine.deliver(key, event)
            if not consumed:
                logger.info("fleet worker %s: event %s for %r handed back (busy: %s)", self.id,
                            gid, key, engine.footprint()["busy"].get(key))
            return {"c": consumed}
        if kind == "s":
            spec = self.specs.get(fields["s"])
            if spec is None:
                return {"c": False, "x": f"no spec named {fields['s']!r} on this worker",
                        "k": "spec"}
            data = json.loads(fields.get("d") or "{}")
            try:
                await engine.start(spec, key, data=data, event=event,
                                   replace=fields.get("r") == "1")
            except SessionExists as exc:
                return {"c": False, "x": str(exc), "k": "exists"}
            return {"c": True}
        if kind == "q":
            return {"c": engine.stop(key, fields.get("why") or "stopped")}
        raise ValueError(f"unknown kind {kind!r}")

    # -- the Engine's hooks ----------------------------------------------------------------
    def _on_trace(self, rec: TraceRecord) -> None:
        if rec.kind != "step":
            return
        # A step is the event's in hand if it is on that event's key and is that event's (the
        # same object) or that start's. A timer's step (no event) never is: its task may have
        # inherited the context of the event that armed it.
        cur = _IN_HAND.get()
        if cur is None or cur[0] not in self._replies or rec.key != cur[1]:
            return
        if (rec.event is not None and rec.event is cur[2]) or (cur[3] == "s"
                                                               and rec.source is None):
            eid = cur[0].split("/", 1)[1]
            self._applied[rec.key] = (_sid(eid), eid)

    def _on_reply(self, reply: Reply) -> None:
        cur = _IN_HAND.get()
        bucket = None
        if cur is not None and reply.event is cur[2] and (reply.event is not None
                                                          or cur[3] == "s"):
            bucket = self._replies.get(cur[0])
        if bucket is not None:
            bucket.append([reply.to, reply.text])
            return
        part = self._parts[self.layout.of(reply.to)]
        if part.state == _DROPPED:
            part = next((q for q in self._parts.values() if q.state != _DROPPED), part)
        if part.state == _DROPPED:
            logger.warning("fleet worker %s: reply to %r dropped: no partition owned",
                           self.id, reply.to)
            return
        part.results.append(["", "", {"r": [[reply.to, reply.text]]}])
        self._kick()

    # -- committing ----------------------------------------------------------------------
    def _kick(self) -> None:
        self._dirty.set()

    async def _flusher(self) -> None:
        while not self._stopping:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._flush_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("fleet worker %s: flush failed", self.id)

    async def _flush_now(self) -> None:
        async with self._flush_lock:  # one commit in flight: a partition's commits stay in order
            await self._flush_locked()

    def _take_batch(self) -> _Batch:
        """What is waiting to be committed, per partition (taken: the lists start afresh)."""
        batch = [(part, part.epoch, part.ops, part.acks, part.results)
                 for part in self._parts.values()
                 if (part.ops or part.acks or part.results) and part.state != _DROPPED]
        for part, *_ in batch:
            part.ops, part.acks, part.results = [], [], []
        return batch

    async def _flush_locked(self) -> None:
        batch = self._take_batch()
        if not batch:
            return
        try:
            if self.cluster:
                codes, forwards = await self._commit_each(batch)
            else:
                keys, args = self._commit_call(batch)
                codes, forwards = list(await self._commit_many(keys=keys, args=args)), []
                self.round_trips += 1
        except (aioredis.RedisError, OSError) as exc:
            await self._commit_failed(batch, exc)
            return
        await self._committed(batch, codes, forwards)

    async def _commit_failed(self, batch: _Batch, exc: BaseException) -> None:
        # Unknown outcome: what we hold for these partitions may not be what is stored.
        logger.warning("fleet worker %s: commit failed (%s): partitions reloaded", self.id, exc)
        for part, epoch, *_ in batch:
            if part.epoch == epoch:
                await self._lose(part)

    async def _committed(self, batch: _Batch, codes: list[Any],
                         forwards: list[tuple[_Part, str, list[list[Any]]]]) -> None:
        done: set[int] = set()
        for (part, epoch, *_), code in zip(batch, codes, strict=True):
            if part.epoch != epoch:
                continue
            if code != 1:
                logger.warning("fleet worker %s: commit of partition %d refused: %r",
                               self.id, part.p, code)
                await self._lose(part)
                continue
            self.commits += 1
            done.add(part.p)
        forwards = [f for f in forwards if f[0].p in done]
        if forwards:
            await self._forward(forwards)

    def _commit_call(self, batch: _Batch) -> tuple[list[str], list[str]]:
        """One server: the keys and arguments of COMMIT_MANY for `batch`: every partition's
        commit and the results for the hosts in one script call (a result is sent atomically
        with its commit, or not at all)."""
        layout = self.layout
        keys: list[str] = []
        for part, *_ in batch:
            keys += part.commit_keys
        streams: dict[str, int] = {}
        args = [str(len(batch)), str(self.outbox_max)]
        for part, _, ops, acks, results in batch:
            if part.forward_to:
                ops = [*ops, "X", part.forward_to]
            by_stream: dict[str, list[list[Any]]] = {}
            for eid, host, payload in results:
                stream = layout.host(host) if host else layout.outbox
                by_stream.setdefault(stream, []).append(
                    [f"{part.p}/{eid}" if eid else "", payload])
            args += [part.value, json.dumps([acks, ops], ensure_ascii=False),
                     str(len(by_stream))]
            for stream, items in by_stream.items():
                idx = streams.setdefault(stream, len(keys) + len(streams) + 1)
                args += [str(idx), json.dumps(items, ensure_ascii=False)[1:-1]]
        return [*keys, *streams], args

    async def _commit_each(self, batch: _Batch
                           ) -> tuple[list[Any], list[tuple[_Part, str, list[list[Any]]]]]:
        """A Cluster: one script call per partition (its keys share a slot), all at once; the
        results go to a partition's `out` stream, forwarded to the hosts after."""
        calls = []
        for part, _, ops, acks, results in batch:
            if part.forward_to:
                ops = [*ops, "X", part.forward_to]
            blob = json.dumps(results, ensure_ascii=False) if results else ""
            calls.append((part.commit_keys,
                          [part.value, json.dumps([acks, ops], ensure_ascii=False), blob]))
        got = await self._many(self._commit, calls)
        codes: list[Any] = []
        forwards: list[tuple[_Part, str, list[list[Any]]]] = []
        for (part, _, _, _, results), res in zip(batch, got, strict=True):
            code = res if isinstance(res, Exception) else res[0]
            codes.append(code)
            if code == 1 and res[1]:
                forwards.append((part, res[1], results))
        return codes, forwards

    async def _forward(self, forwards: list[tuple[_Part, str, list[list[Any]]]]) -> None:
        """Copy committed results to their hosts' streams and timer replies to the outbox, one
        entry per host and commit (at least once: a worker dying here leaves them in `out`
        for the next owner, and hosts drop an origin they have seen)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for part, out_id, results in forwards:
                self._send_out(pipe, part.p, out_id, results)
                part.forward_to = _after(out_id)
            try:
                await pipe.execute()
                self.round_trips += 1
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("fleet worker %s: forwarding failed (%s); the next owner "
                               "forwards again", self.id, exc)
                for part, _, _ in forwards:
                    await self._lose(part)

    def _send_out(self, pipe: Any, p: int, out_id: str, results: list[list[Any]]) -> None:
        by_host: dict[str, list[list[Any]]] = {}
        for eid, host, payload in results:
            by_host.setdefault(host, []).append([f"{p}/{eid}" if eid else "", payload])
        for host, items in by_host.items():
            stream = self.layout.host(host) if host else self.layout.outbox
            pipe.xadd(stream, {"o": f"{p}:{out_id}:{host}",
                               "b": json.dumps(items, ensure_ascii=False)},
                      maxlen=self.outbox_max, approximate=False)

    async def _forward_leftovers(self, parts: list[_Part]) -> None:
        """On takeover: results committed by the previous owner but maybe not forwarded."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for part in parts:
                pipe.xrange(self.layout.part(part.p, "out"), "-", "+")
            rows = await pipe.execute()
        self.round_trips += 1
        if not any(rows):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for part, entries in zip(parts, rows, strict=True):
                for out_id, f in entries:
                    try:
                        results = json.loads(f.get("b") or "[]")
                    except ValueError:
                        logger.error("fleet: unreadable results %s in partition %d", out_id,
                                     part.p)
                        continue
                    self._send_out(pipe, part.p, out_id, results)
                if entries:
                    part.forward_to = _after(entries[-1][0])
            await pipe.execute()
        self.round_trips += 1

    def figures(self) -> dict[str, Any]:
        return {"worker": self.id, "events": self.events, "duplicates": self.duplicates,
                "round_trips": self.round_trips, "takeovers": self.takeovers,
                "commits": self.commits, "lost": self.lost, "owned": len(self.owned())}


# -- the host --------------------------------------------------------------------------------
class _Expired(Exception):
    """A host's call waited `timeout` for its result."""


class FleetHost:
    """The side of a bot that receives chat events and hands them to the fleet, with the
    Engine's contract: `dispatch`/`deliver` return True once a worker's Engine consumed the
    event and committed its step (its replies went to `send` first), False if it was handed
    back. `start` and `stop` likewise. `send` also gets the replies nobody waits for (timer
    actions), through the shared outbox (one host of all gets each; pass `outbox=False` for
    a host that only feeds events). A result a worker does not give within `timeout` seconds
    raises `StoreError` (the event stays queued and may still be handled)."""

    def __init__(self, client: Client, *, prefix: str = "convo:", partitions: int = 256,
                 host_id: str | None = None, send: Callable[[Reply], object] | None = None,
                 filters: Mapping[str, Filter] | None = None, timeout: float = 30.0,
                 outbox: bool = True) -> None:
        self.redis = client
        self.layout = Layout(prefix, partitions)
        self.id = host_id or uuid.uuid4().hex[:12]
        self.outbox: deque[Reply] = deque(maxlen=10_000)
        self._send = self.outbox.append if send is None else send
        self._filters = tuple((DEFAULT_FILTERS if filters is None else filters).items())
        self.timeout = timeout
        self._use_outbox = outbox
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._early: dict[str, dict[str, Any]] = {}
        self._queue: list[tuple[str, dict[str, str], asyncio.Future[str]]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._seen_out: deque[str] = deque(maxlen=50_000)
        self._seen_set: set[str] = set()
        self._sending: set[asyncio.Future[Any]] = set()
        self._partition_of_stream: dict[str, int] = {}
        self._due: dict[str, float] = {}  # event id -> when its caller stops waiting
        self._closing = False
        self.round_trips = 0
        # One server: a batch of events is one script call (a Cluster: a pipeline of XADDs,
        # the streams being in different slots).
        self._enqueue = (None if isinstance(client, aioredis.RedisCluster)
                         else client.register_script(lua.ENQUEUE))

    async def __aenter__(self) -> FleetHost:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._results()), loop.create_task(self._writer()),
                       loop.create_task(self._expire())]
        if self._use_outbox:
            with contextlib.suppress(aioredis.ResponseError):
                await self.redis.xgroup_create(self.layout.outbox, "hosts", id="0",
                                               mkstream=True)
            self._tasks.append(loop.create_task(self._outbox()))

    async def close(self) -> None:
        # The flag as well as the cancel: a cancel that lands inside a redis-py call can be
        # absorbed by its connection handling, and the loops must end anyway.
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        with contextlib.suppress(aioredis.RedisError):
            await self.redis.delete(self.layout.host(self.id))

    # -- the Engine-like API -------------------------------------------------------------
    async def dispatch(self, event: Message | str) -> bool:
        """Filters key the event (as `Engine.dispatch`); each key is tried in turn until a
        worker's session consumes it. False: none did (give it to your other handlers)."""
        tried: set[str] = set()
        for kind, fn in self._filters:
            try:
                key = fn(event)
            except Exception as exc:
                raise EventError(f"filter {kind!r} cannot key {event!r}: {exc}") from exc
            if key is not None and key not in tried:
                tried.add(key)
                if await self.deliver(key, event):
                    return True
        return False

    async def deliver(self, key: str, event: Message | str) -> bool:
        """Give `event` to the session on `key` (no filters)."""
        return bool((await self._call(key, {"t": "d", "e": encode(event)}, event))["c"])

    async def start(self, spec: Spec | str, key: str, *, data: Mapping[str, Any] | None = None,
                    event: Message | str | None = None, replace: bool = False) -> bool:
        """Start `spec` (a Spec or its name) on `key`. Raises `SessionExists` if a session
        lives there (unless `replace`)."""
        name = spec.name if isinstance(spec, Spec) else spec
        fields = {"t": "s", "s": name, "d": json.dumps(dict(data or {})),
                  "e": "" if event is None else encode(event), "r": "1" if replace else ""}
        got = await self._call(key, fields, event)
        if got.get("k") == "exists":
            raise SessionExists(key, name, "?")
        return bool(got["c"])

    async def stop(self, key: str, reason: str = "stopped") -> bool:
        return bool((await self._call(key, {"t": "q", "why": reason}))["c"])

    async def _call(self, key: str, fields: dict[str, str], event: Any = None
                    ) -> dict[str, Any]:
        if not isinstance(key, str) or not key:
            raise TypeError(f"a session key must be a non-empty str, got {key!r}")
        fields = {**fields, "k": key, "h": self.id}
        p = self.layout.of(key)
        stream = self.layout.part(p, "ev")
        self._partition_of_stream[stream] = p
        queued: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((stream, fields, queued))
        self._wake.set()
        eid = await queued
        loop = asyncio.get_running_loop()
        fut = self._waiting.get(eid)
        if fut is None:  # (the writer registered it; an early result may be there already)
            fut = self._waiting[eid] = loop.create_future()
        # `_expire` ends the wait (one sweep for all calls: no timer per call)
        self._due[eid] = loop.time() + self.timeout
        try:
            payload = await fut
        except _Expired:
            raise StoreError(f"no worker answered event {eid} for {key!r} within "
                             f"{self.timeout:g} s (it stays queued)") from None
        finally:
            self._waiting.pop(eid, None)
            self._due.pop(eid, None)
        for to, text in payload.get("r", ()):
            self._emit(Reply(to, text, event))
        if payload.get("k") == "event":
            raise EventError(payload.get("x", "bad event"))
        if payload.get("k") == "error":
            logger.error("worker failed on event %s for %r: %s", eid, key, payload.get("x"))
        payload["id"] = eid
        return payload

    def _emit(self, reply: Reply) -> None:
        try:
            out = self._send(reply)
            if asyncio.iscoroutine(out):
                task = asyncio.ensure_future(out)
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
        except Exception:
            logger.exception("host send failed for %r", reply)

    # -- loops -----------------------------------------------------------------------------
    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                bodies = [json.dumps(fields, ensure_ascii=False) for _, fields, _ in batch]
                if self._enqueue is not None:
                    ids = await self._enqueue(keys=[stream for stream, _, _ in batch],
                                              args=bodies)
                else:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for (stream, _, _), body in zip(batch, bodies, strict=True):
                            pipe.xadd(stream, {"m": body})
                        ids = await pipe.execute()
                self.round_trips += 1
            except (aioredis.RedisError, OSError) as exc:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreError(f"cannot queue the event: {exc}"))
                continue
            for (stream, _, fut), entry_id in zip(batch, ids, strict=True):
                eid = f"{self._partition_of_stream[stream]}/{entry_id}"
                waiter = self._waiting[eid] = loop.create_future()
                early = self._early.pop(eid, None)
                if early is not None:
                    waiter.set_result(early)
                if not fut.done():
                    fut.set_result(eid)

    async def _expire(self) -> None:
        """End the calls whose result did not come within `timeout` (checked every tenth of
        it, at most every second)."""
        loop = asyncio.get_running_loop()
        period = min(1.0, self.timeout / 10)
        while not self._closing:
            await asyncio.sleep(period)
            now = loop.time()
            for eid in [e for e, due in self._due.items() if due <= now]:
                del self._due[eid]
                fut = self._waiting.get(eid)
                if fut is not None and not fut.done():
                    fut.set_exception(_Expired())

    async def _results(self) -> None:
        stream = self.layout.host(self.id)
        last = "0-0"
        while not self._closing:
            try:
                got = await self.redis.xread({stream: last}, count=1000, block=1000)
                self.round_trips += 1
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("host %s: reading results failed: %s", self.id, exc)
                await asyncio.sleep(0.1)
                continue
            except Exception:
                logger.exception("host %s: reading results failed", self.id)
                await asyncio.sleep(0.1)
                continue
            for _, entries in got or ():
                for entry_id, f in entries:
                    last = entry_id
                    if not self._fresh(f.get("o", "")):
                        continue
                    for eid, payload in json.loads(f.get("b") or "[]"):
                        fut = self._waiting.get(eid)
                        if fut is not None:
                            if not fut.done():
                                fut.set_result(payload)
                        else:
                            self._early[eid] = payload
                            while len(self._early) > 10_000:
                                self._early.pop(next(iter(self._early)))

    def _fresh(self, origin: str) -> bool:
        """False for a result or reply forwarded twice (a worker died while forwarding)."""
        if not origin:
            return True
        if origin in self._seen_set:
            return False
        if len(self._seen_out) == self._seen_out.maxlen:
            self._seen_set.discard(self._seen_out[0])
        self._seen_out.append(origin)
        self._seen_set.add(origin)
        return True

    async def _outbox(self) -> None:
        stream = self.layout.outbox
        while not self._closing:
            try:
                got = await self.redis.xreadgroup("hosts", self.id, {stream: ">"}, count=1000,
                                                  block=1000)
                self.round_trips += 1
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("host %s: reading the outbox failed: %s", self.id, exc)
                await asyncio.sleep(0.1)
                if isinstance(exc, aioredis.ResponseError) and "NOGROUP" in str(exc):
                    with contextlib.suppress(aioredis.ResponseError):
                        await self.redis.xgroup_create(stream, "hosts", id="0", mkstream=True)
                continue
            ids = []
            for _, entries in got or ():
                for entry_id, f in entries:
                    ids.append(entry_id)
                    if not self._fresh(f.get("o", "")):
                        continue
                    for _, payload in json.loads(f.get("b") or "[]"):
                        for to, text in payload.get("r", ()):
                            self._emit(Reply(to, text, None))
            if ids:
                with contextlib.suppress(aioredis.RedisError):
                    await self.redis.xack(stream, "hosts", *ids)
                    await self.redis.xdel(stream, *ids)


# -- running a worker process ----------------------------------------------------------------
async def serve(worker: FleetWorker) -> None:
    """Run `worker` until SIGTERM or SIGINT, then drain (finish, commit, release leases)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(worker.drain()))
    await worker.run()

