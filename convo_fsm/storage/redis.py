"""RedisStore: an engine's sessions in Redis (the store protocol, like SQLite).

Keys (all under `prefix`, default `convo:`):

- `s:{key}`      a hash: `body` (the session as JSON), `fp` (spec fingerprint), `rev`,
                 `spec`, `state` (the last three are for admins reading Redis by hand);
- `due`          a sorted set: session key -> earliest of its warning time and deadline;
- `all`          a set of the live session keys; `rev` the revision counter.

Every write is one Lua script, so compare-and-set on `rev`, the session, its due time and
the key set change together. One Engine uses a store; several worker processes sharing
keys are a fleet (`convo_fsm.storage.fleet`: partitions with fenced leases, the same Engine
on every worker).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis

from convo_fsm.session import Session
from convo_fsm.storage.base import (
    Conflict,
    Stored,
    StoreError,
    decode_session,
    encode_session,
    next_due,
)

__all__ = ["RedisStore"]

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

def _float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class RedisStore:
    """The store protocol on a Redis server (redis-py asyncio)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "convo:") -> None:
        self.redis = client
        self.prefix = prefix
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)

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

    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        key = session.key
        ok, rev = await self._call("save", self._save(
            keys=[self.k("s", key), self.k("due"), self.k("rev"), self.k("all")],
            args=["" if expect is None else str(expect), encode_session(session), fingerprint,
                  session.spec, session.state, _float(next_due(session)), key]))
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
