"""RedisStore and RedisWorker: sessions in Redis, shared by several worker processes.

Keys (all under `prefix`, default `convo:`):

- `s:{key}`      a hash: `body` (the session as JSON), `fp` (spec fingerprint), `rev`,
                 `spec`, `state` (the last three are for admins reading Redis by hand);
- `due`          a sorted set: session key -> earliest of its warning time and deadline;
- `all`          a set of the live session keys; `rev` the revision counter;
- `lock:{key}`   the per-key lock: a random token with an expiry (`SET NX PX`);
- `in:{key}`     the key's inbox: events waiting for their turn (a list, oldest first);
- `run:{key}`    the event the lock holder is handling (moved there from the inbox);
- `pending`      a set of keys whose inbox may hold events nobody is draining.

`RedisStore` is the store protocol (usable by one `Engine`, like SQLite). Every write is
one Lua script, so compare-and-set on `rev`, the session, its due time and the key set
change together.

`RedisWorker` runs specs for several processes at once, one event at a time per key:

1. `deliver(key, event)` appends the event to the key's inbox, then tries to take the
   key's lock. A worker that cannot (another one holds it) returns: the holder takes
   the event in turn before it lets the lock go. Nothing races, nothing is dropped.
2. The holder moves one event at a time from the inbox to `run:{key}`, loads the
   session, runs the step and its actions (the lock's expiry is renewed while they
   run), commits the session with compare-and-set, then clears `run:{key}`.
3. A worker killed mid-action stops renewing: its lock expires, and the next worker
   that takes the lock (on a new event, or while polling `pending`) first handles the
   event left in `run:{key}` again: at-least-once, like a crash before an SQLite commit.
4. Timers: each worker polls `due`; a Lua script claims due keys by pushing their score
   `lease` seconds ahead, so one worker gets each (and a claimant that dies leaves it to
   be claimed again after the lease). The claimant takes the key's lock, loads the
   session and fires its warning or timeout only if it is still due: a timeout fires
   once even if two workers claim it over time.

Events travel through Redis, so a worker's events are `Message`s or `str`s.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis

from convo_fsm.context import Context, Reply
from convo_fsm.message import DEFAULT_FILTERS, Filter, Message
from convo_fsm.session import Session
from convo_fsm.spec import EventError, Spec
from convo_fsm.step import (
    End,
    GuardFailed,
    Input,
    Result,
    Run,
    TimerFired,
    achoose,
    new_session,
    step,
)
from convo_fsm.step import restore as decide_restore
from convo_fsm.storage.base import (
    Conflict,
    Policy,
    Stored,
    StoreError,
    decode_session,
    encode_session,
    fingerprint,
    next_due,
)

__all__ = ["RedisStore", "RedisWorker", "decode_event", "encode_event"]

logger = logging.getLogger("convo_fsm.storage")

_SAVE = """
local cur = redis.call('HGET', KEYS[1], 'rev')
if (cur or '') ~= ARGV[1] then return {0, cur or ''} end
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'fp', ARGV[3], 'spec', ARGV[4], 'state', ARGV[5],
           'rev', rev)
if ARGV[6] == '' then redis.call('ZREM', KEYS[2], ARGV[7])
else redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7]) end
redis.call('SADD', KEYS[4], ARGV[7])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'last', ARGV[8]) end
return {1, rev}
"""

_DELETE = """
local cur = redis.call('HGET', KEYS[1], 'rev')
if not cur then
  if ARGV[1] ~= '' then return {0, ''} end
  return {2, ''}
end
if ARGV[1] ~= '' and cur ~= ARGV[1] then return {0, cur} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[2])
return {1, cur}
"""

# Claim up to ARGV[2] keys due at ARGV[1]: their score moves to ARGV[3] (the lease's end),
# so no other worker sees them due until then.
_CLAIM = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, k in ipairs(keys) do redis.call('ZADD', KEYS[1], ARGV[3], k) end
return keys
"""

# The key's next event: the one in `run` (left by a worker that died), else the inbox's
# oldest, moved to `run`. ARGV[1] == '1' first drops the one just handled.
_NEXT = """
if ARGV[1] == '1' then redis.call('LPOP', KEYS[1]) end
local r = redis.call('LINDEX', KEYS[1], 0)
if r then return r end
return redis.call('LMOVE', KEYS[2], KEYS[1], 'LEFT', 'RIGHT')
"""

# Let the key go unless events came meanwhile (then keep the lock and go on: 0).
_LEAVE = """
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisStore:
    """The store protocol on a Redis server (redis-py asyncio)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "convo:") -> None:
        self.redis = client
        self.prefix = prefix
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._next = client.register_script(_NEXT)
        self._leave = client.register_script(_LEAVE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None) -> RedisStore:
        """`redis://HOST:PORT/DB`; a `prefix=` query parameter names the key prefix
        (default `convo:`), so `convo-fsm sessions --store URL` can reach any of them."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = [v for k, v in query if k == "prefix"]
        rest = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query
                                                          if k != "prefix"])))
        try:
            client = aioredis.Redis.from_url(rest, decode_responses=True)
        except ValueError as exc:
            raise StoreError(f"bad Redis URL {url!r}: {exc}") from exc
        return cls(client, prefix=prefix if prefix is not None else
                   (given[-1] if given else "convo:"))

    def __repr__(self) -> str:
        kwargs = self.redis.connection_pool.connection_kwargs
        return f"<RedisStore {kwargs.get('host', '?')}:{kwargs.get('port', '?')} {self.prefix!r}>"

    def k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except aioredis.RedisError as exc:
            raise StoreError(f"Redis {what} failed: {exc}") from exc

    @staticmethod
    def _stored(key: str, row: Mapping[str, str] | list[str | None]) -> Stored | None:
        if isinstance(row, list):
            body, fp, rev = row
        else:
            body, fp, rev = row.get("body"), row.get("fp"), row.get("rev")
        if body is None or rev is None:
            return None
        try:
            return Stored(decode_session(body), fp or "", int(rev))
        except (StoreError, ValueError) as exc:
            logger.error("Redis store: skipping unreadable session %r: %s", key, exc)
            return None

    async def load(self, key: str) -> Stored | None:
        row = await self._call("load", self.redis.hgetall(self.k("s", key)))
        if not row:
            return None
        if "body" in row:
            decode_session(row["body"])  # an unreadable record raises StoreError, naming it
        return self._stored(key, row)

    async def save(self, session: Session, fingerprint: str, expect: int | None,
                   event_id: str = "") -> int:
        """The protocol's save; `event_id` (workers) is recorded with the session, in the
        same write, as the last event whose step is committed."""
        key = session.key
        ok, rev = await self._call("save", self._save(
            keys=[self.k("s", key), self.k("due"), self.k("rev"), self.k("all")],
            args=["" if expect is None else str(expect), encode_session(session), fingerprint,
                  session.spec, session.state, _float(next_due(session)), key, event_id]))
        if not ok:
            raise Conflict(key, expect, int(rev) if rev else None)
        return int(rev)

    async def delete(self, key: str, expect: int | None = None) -> bool:
        ok, rev = await self._call("delete", self._delete(
            keys=[self.k("s", key), self.k("due"), self.k("all")],
            args=["" if expect is None else str(expect), key]))
        if ok == 0:
            raise Conflict(key, expect, int(rev) if rev else None)
        return bool(ok == 1)

    async def _many(self, keys: Iterable[str]) -> list[Stored]:
        keys = list(keys)
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.k("s", key), "body", "fp", "rev")
            rows = await self._call("read", pipe.execute())
        return [s for key, row in zip(keys, rows, strict=True)
                if (s := self._stored(key, row)) is not None]

    async def due(self, now: float) -> list[Stored]:
        keys = await self._call("due", self.redis.zrangebyscore(self.k("due"), "-inf", now))
        return await self._many(keys)

    async def list(self) -> list[Stored]:
        keys = await self._call("list", self.redis.smembers(self.k("all")))
        return await self._many(sorted(keys))

    async def close(self) -> None:
        await self.redis.aclose()

    # -- what workers need besides the protocol ------------------------------------------
    async def claim_due(self, now: float, limit: int, lease: float) -> builtins.list[str]:
        """Due keys, each claimed for `lease` seconds by the caller alone."""
        keys = await self._call("claim", self._claim(
            keys=[self.k("due")], args=[repr(now), str(limit), repr(now + lease)]))
        return list(keys)

    async def load_with_last(self, key: str) -> tuple[Stored | None, str | None]:
        """`load`, and the id of the last event committed on `key` (see `save`)."""
        row = await self._call("load", self.redis.hgetall(self.k("s", key)))
        if not row:
            return None, None
        if "body" in row:
            decode_session(row["body"])  # an unreadable record raises StoreError, naming it
        return self._stored(key, row), row.get("last")

    async def next_event(self, key: str, drop_current: bool) -> str | None:
        got = await self._call("next", self._next(keys=[self.k("run", key), self.k("in", key)],
                                                  args=["1" if drop_current else "0"]))
        return None if got is None else str(got)

    async def leave(self, key: str, token: str) -> bool:
        """Release `key`'s lock if its inbox is empty (True); False: events are waiting."""
        return bool(await self._call("leave", self._leave(
            keys=[self.k("lock", key), self.k("in", key), self.k("pending")],
            args=[token, key])))

    async def unclaim(self, key: str, now: float) -> None:
        """Give a claimed timer back (its key was busy): due again at the next poll."""
        await self._call("unclaim", self.redis.zadd(self.k("due"), {key: now}, xx=True))

    async def lock(self, key: str, token: str, ttl_ms: int) -> bool:
        got = await self._call("lock", self.redis.set(self.k("lock", key), token, nx=True,
                                                      px=ttl_ms))
        return bool(got)

    async def renew(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(await self._call("renew", self._renew(keys=[self.k("lock", key)],
                                                          args=[token, str(ttl_ms)])))

    async def unlock(self, key: str, token: str) -> bool:
        return bool(await self._call("unlock", self._release(keys=[self.k("lock", key)],
                                                             args=[token])))


# -- events through Redis --------------------------------------------------------------------
def encode_event(event: object, event_id: str) -> str:
    """An event as it waits in an inbox, with an id that makes its commit recognisable."""
    if isinstance(event, Message):
        body: dict[str, Any] = {"message": [event.text, event.sender, event.group,
                                            event.platform]}
    elif isinstance(event, str):
        body = {"text": event}
    else:
        raise EventError(f"a Redis worker's events are Messages or strs, "
                         f"got {type(event).__name__}")
    body["id"] = event_id
    return json.dumps(body, ensure_ascii=False)


def decode_event(text: str) -> tuple[str, Message | str]:
    raw = json.loads(text)
    if "message" in raw:
        body, sender, group, platform = raw["message"]
        return str(raw["id"]), Message(body, sender, group, platform)
    return str(raw["id"]), cast(str, raw["text"])


class _LockLost(Exception):
    """Our lock on a key expired and someone else may hold it: stop, commit nothing."""


class RedisWorker:
    """One of several processes running `specs` on one Redis store (see the module doc).

    `send` gets every `Reply`; `lock_ttl` (s) is how long a killed worker's lock keeps
    its key; `poll` (s) how often timers and orphaned inboxes are looked at; `lease` (s)
    how long a claimed timer is ours before another worker may claim it again.
    `on_commit(key, session)` is called after each step is committed (None: it ended).
    """

    def __init__(self, store: RedisStore, specs: Iterable[Spec], *,
                 send: Callable[[Reply], object] | None = None,
                 filters: Mapping[str, Filter] | None = None,
                 policies: Mapping[str, Policy] | None = None,
                 lock_ttl: float = 10.0, poll: float = 0.05, lease: float = 30.0,
                 clock: Callable[[], float] = time.time,
                 on_commit: Callable[[str, Session | None], object] | None = None) -> None:
        self.store = store
        self.specs: dict[str, Spec] = {}
        for spec in specs:
            if not isinstance(spec, Spec):
                raise TypeError(f"RedisWorker needs Specs, got {type(spec).__name__}")
            self.specs[spec.name] = spec
        self.outbox: list[Reply] = []
        self._send = self.outbox.append if send is None else send
        self._filters = tuple((DEFAULT_FILTERS if filters is None else filters).items())
        self._policies = dict(policies or {})
        if not lock_ttl > 0 or not poll > 0 or not lease > 0:
            raise ValueError("lock_ttl, poll and lease must be > 0 seconds")
        self._ttl_ms = max(1, int(lock_ttl * 1000))
        self._poll = poll
        self._lease = lease
        self.now = clock
        self._on_commit = on_commit
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> RedisWorker:
        self.run()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def run(self) -> None:
        """Start polling timers and orphaned inboxes in the background."""
        if self._runner is None:
            self._stopping = False
            self._runner = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        """Stop polling; let the events and timers in hand finish. Sessions stay stored."""
        if self._runner is not None:
            # The flag as well as the cancel: a cancel that lands inside a redis-py call
            # can be absorbed by its connection handling, and the loop must end anyway.
            self._stopping = True
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _loop(self) -> None:
        store = self.store
        while not self._stopping:
            try:
                for key in await store.claim_due(self.now(), 64, self._lease):
                    self._spawn(self._drain(key, timer=True))
                for pending in await store.redis.smembers(store.k("pending")):
                    self._spawn(self._drain(str(pending)))
            except (StoreError, aioredis.RedisError) as exc:
                logger.warning("Redis worker poll failed: %s", exc)
            await asyncio.sleep(self._poll)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the host's side ---------------------------------------------------------------------
    async def start(self, spec: Spec, key: str, *, data: Mapping[str, Any] | None = None,
                    event: Message | str | None = None) -> Session | None:
        """Start `spec` on `key` unless a session lives there (then None: it is not replaced)."""
        if spec.name not in self.specs:
            raise ValueError(f"spec {spec.name!r} is not one this worker runs")
        own = dict(data or {})
        json.dumps(own)  # JSON by contract: fail here, not in the commit
        token = await self._acquire(key, wait=True)
        try:
            if await self.store.load(key) is not None:
                return None
            now = self.now()
            result = new_session(spec, key, now, own)
            return await self._apply(spec, None, result, event, "start", now, key)
        finally:
            await self.store.unlock(key, token)

    async def dispatch(self, event: Message | str) -> bool:
        """Queue `event` for the session its key names (filters, as `Engine.dispatch`).
        False: no session lives on any of its keys."""
        for kind, fn in self._filters:
            try:
                key = fn(event)
            except Exception as exc:
                raise EventError(f"filter {kind!r} cannot key {event!r}: {exc}") from exc
            if key is not None and await self.store.redis.exists(self.store.k("s", key)):
                await self.deliver(key, event)
                return True
        return False

    async def deliver(self, key: str, event: Message | str) -> None:
        """Queue `event` on `key`'s inbox and handle what is queued if the key is free."""
        store = self.store
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(store.k("in", key), encode_event(event, secrets.token_hex(8)))
            pipe.sadd(store.k("pending"), key)
            await store._call("deliver", pipe.execute())
        await self._drain(key)

    # -- one key's turn ----------------------------------------------------------------------
    async def _acquire(self, key: str, *, wait: bool) -> str:
        token = secrets.token_hex(8)
        while not await self.store.lock(key, token, self._ttl_ms):
            if not wait:
                return ""
            await asyncio.sleep(self._poll)
        return token

    async def _drain(self, key: str, *, timer: bool = False) -> None:
        """Take `key`'s lock if free, handle its due timer (if claimed) and its unfinished
        and queued events, then let it go. Busy: return, the holder does it."""
        store = self.store
        token = await self._acquire(key, wait=False)
        if not token:
            if timer:  # claimed, but the key is busy: due again at the next poll
                await store.unclaim(key, self.now())
            return
        released = False
        try:
            if timer:
                await self._guarded(key, token, self._fire(key))
            handled = False
            while True:
                raw = await store.next_event(key, handled)
                if raw is None:
                    if await store.leave(key, token):
                        released = True
                        return
                    handled = False
                    continue
                await self._guarded(key, token, self._handle(key, raw))
                handled = True
        except _LockLost:
            logger.warning("worker lost the lock of %r (expired): it stopped there", key)
        finally:
            if not released:
                await store.unlock(key, token)

    async def _guarded(self, key: str, token: str, work: Any) -> None:
        """Run `work` while renewing our lock; if the lock is lost, cancel it."""
        task = asyncio.ensure_future(work)
        lost = False
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self._ttl_ms / 3000)
                if not task.done() and not await self.store.renew(key, token, self._ttl_ms):
                    lost = True
                    task.cancel()
            if lost:
                raise _LockLost
            try:
                task.result()
            except (StoreError, aioredis.RedisError):
                raise
            except Exception as exc:  # the step's own failures are handled inside it
                logger.exception("worker: handling %r failed: %r", key, exc)
        finally:
            if not task.done():
                task.cancel()

    async def _load(self, key: str, event_id: str | None = None
                    ) -> tuple[Spec, Session, int] | None:
        """The session on `key` as this worker's specs read it; None if there is nothing to
        do (no session, an unknown spec, or `event_id` is already committed)."""
        stored, last = await self.store.load_with_last(key)
        if stored is None:
            return None
        if event_id is not None and last == event_id:
            return None  # committed by a worker that died before it could say so
        spec = self.specs.get(stored.session.spec)
        if spec is None:
            logger.warning("session %r runs spec %r, which this worker does not know",
                           key, stored.session.spec)
            return None
        if stored.session.state in spec.by_name and stored.fingerprint == fingerprint(spec):
            return spec, stored.session, stored.rev
        decision = decide_restore(spec, stored.session, stored.fingerprint == fingerprint(spec),
                                  self._policies.get(spec.name, Policy()), self.now())
        if decision.kind in ("keep", "moved"):
            return spec, decision.session, stored.rev
        await self.store.delete(key, stored.rev)
        if decision.message is not None:
            self._send(Reply(key, decision.message))
        if decision.kind == "reset":
            result = new_session(spec, key, self.now(), decision.session.data)
            await self._apply(spec, None, result, None, "start", self.now(), key)
        return None

    async def _handle(self, key: str, raw: str) -> None:
        try:
            event_id, event = decode_event(raw)
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("session %r: dropping an unreadable queued event %r: %r", key, raw, exc)
            return
        loaded = await self._load(key, event_id)
        if loaded is None:
            return  # the session ended before its turn: the event has no taker
        spec, session, rev = loaded
        try:
            name = spec.classify(event)
        except Exception as exc:
            logger.error("session %r: spec %r cannot classify %r: %r; dropped", key, spec.name,
                         event, exc)
            return
        now = self.now()
        try:
            t = await achoose(spec.lookup(session.state, name), Context(session, event, name, now))
        except GuardFailed as failed:
            logger.error("session %r: %s; session ended", key, failed, exc_info=failed.error)
            await self.store.delete(key, rev)
            return
        if t is not None:
            result = step(spec, session, Input(name, event, t), now)
            await self._apply(spec, rev, result, event, name, now, key, event_id)

    async def _fire(self, key: str) -> None:
        loaded = await self._load(key)
        if loaded is None:
            return
        spec, session, rev = loaded
        now = self.now()
        warning = session.warn_at is not None and session.warn_at <= now
        if not warning and (session.deadline is None or session.deadline > now):
            # Not due (another worker fired it, or it moved): put its due time right again.
            await self.store.save(session, fingerprint(spec), rev)
            return
        result = step(spec, session, TimerFired(warning), now)
        await self._apply(spec, rev, result, None, "warning" if warning else "timeout", now,
                          key)

    def _emit(self, reply: Reply) -> None:
        self._send(reply)

    async def _apply(self, spec: Spec, rev: int | None, result: Result, event: Any, name: str,
                     now: float, key: str, event_id: str = "") -> Session | None:
        """Run the step's actions, then commit (compare-and-set on `rev`)."""
        session = result.session
        ctx = Context(session, event, name, now, self._emit)
        ended = False
        for effect in result.effects:
            if type(effect) is Run:
                try:
                    out = effect.action(ctx)
                    if inspect.isawaitable(out):
                        await out
                except Exception as exc:
                    logger.error("session %r: %s action raised %r; session ended", key,
                                 effect.what, exc, exc_info=exc)
                    ended = True
                    break
            elif type(effect) is End:
                ended = True
        if ended:
            if rev is not None:
                await self.store.delete(key, rev)
            if self._on_commit is not None:
                self._on_commit(key, None)
            return None
        await self.store.save(session, fingerprint(spec), rev, event_id)
        if self._on_commit is not None:
            self._on_commit(key, session)
        return session
