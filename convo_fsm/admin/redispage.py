"""The sessions list of a Redis store, read without decoding every record where it can be.

It reads the keys `convo_fsm.storage.redis.RedisStore` writes (`store.k(...)`): the set of
every session key (`all`), the sorted set of their `next_due` times (`due`: the earliest
of the deadline and the warning time) and each session's hash (`spec`, `state`, `body`).

- `states()` / `counts()`: every key's `spec` and `state` by a Lua script over 2,000 keys
  at a time (one round trip each, a few milliseconds of the server's time each: a bot's
  commands are not held up for long), no bodies.
- `page()`: the keys that pass the filters (a key search on the set of keys; a spec or
  state filter on `states()`), then the same bound as `sqlpage`: the `top` = offset + limit
  smallest `due` times among them give a guess U; the bodies of the keys with `due` <= U
  are read, and if the page's last deadline is <= U the page is right (every other key's
  deadline is > U); else the `top`-th deadline read is a bound that holds (one more read).
  Keys without a deadline come last, by key. A deep page reads the bodies of every key
  before it (`offset` of them): it costs in proportion to its depth.

The order is `source.query`'s (it sorts the candidates); tests/admin/test_admin_redispage.py
checks the pages against it on a real server.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from convo_fsm.session import Session

if TYPE_CHECKING:
    from convo_fsm.storage.redis import RedisStore

__all__ = ["RedisPages"]

_SPEC_STATE = """
local out = {}
for i, k in ipairs(KEYS) do
  local r = redis.call('HMGET', k, 'spec', 'state')
  out[#out + 1] = r[1] or ''
  out[#out + 1] = r[2] or ''
end
return out
"""

CHUNK = 2000


def _lite(key: str, spec: str, state: str, deadline: float | None) -> Session:
    return Session(key, spec, state, {}, deadline, None, 0, (), 0.0, 0.0)


def _str(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _deadline(body: str | None) -> float | None:
    """The deadline in a stored body (None if it has none, or cannot be read)."""
    try:
        value = json.loads(body) if body is not None else None
    except ValueError:
        return None
    d = value.get("deadline") if isinstance(value, dict) else None
    if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d):
        return None
    return float(d)


class RedisPages:
    """Pages and counts of a `RedisStore`'s sessions (its client, its prefix)."""

    def __init__(self, store: RedisStore) -> None:
        from redis.exceptions import RedisError

        self.errors: tuple[type[Exception], ...] = (RedisError,)
        self.store = store
        self.redis = store.redis
        self._spec_state = self.redis.register_script(_SPEC_STATE)

    async def _keys(self) -> list[str]:
        return [_str(k) for k in await self.redis.smembers(self.store.k("all"))]

    async def states(self) -> dict[str, tuple[str, str]]:
        """Every key's (spec, state)."""
        keys = await self._keys()
        out: dict[str, tuple[str, str]] = {}
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i:i + CHUNK]
            flat = await self._spec_state(keys=[self.store.k("s", k) for k in chunk])
            pairs = iter(flat)
            for key, spec, state in zip(chunk, pairs, pairs, strict=True):
                if spec and state:  # a key removed meanwhile has neither
                    out[key] = (_str(spec), _str(state))
        return out

    async def counts(self) -> Counter[tuple[str, str]]:
        return Counter((await self.states()).values())

    async def _rows(self, keys: Iterable[str], body: bool) -> list[Session]:
        """The keys' listing rows (with their deadlines if `body`); spec and state are read
        with them, so a row is never older than its key's filter."""
        keys = list(keys)
        if not keys:
            return []
        fields = ("spec", "state", "body") if body else ("spec", "state")
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.store.k("s", key), *fields)
            found = await pipe.execute()
        return [_lite(key, row[0], row[1], _deadline(row[2]) if body else None)
                for key, row in zip(keys, found, strict=True) if row[0] and row[1]]

    async def page(self, *, text: str = "", spec: str = "", state: str = "", offset: int = 0,
                   limit: int = 50, states: Mapping[str, tuple[str, str]] | None = None
                   ) -> tuple[int, list[Session]]:
        """(matches, the `limit` of them from `offset`). A spec or state filter reads every
        key's spec and state (`states()`, or `states` if given: a recent one)."""
        from convo_fsm.admin.source import query  # the one order of the list

        due = self.store.k("due")
        needle = text.casefold()
        chosen: set[str] | None = None
        if spec or state:
            known = await self.states() if states is None else states
            chosen = {k for k, (sp, st) in known.items()
                      if spec in ("", sp) and state in ("", st) and needle in k.casefold()}
            total = len(chosen)
        elif needle:
            chosen = {k for k in await self._keys() if needle in k.casefold()}
            total = len(chosen)
        else:
            total = int(await self.redis.scard(self.store.k("all")))
        top = offset + limit
        if offset >= total:
            return total, []
        if chosen is not None and len(chosen) <= CHUNK:  # a key search finding a few
            rows = await self._rows(chosen, body=True)
            return len(rows), list(query(rows, offset=offset, limit=limit).rows)

        async def under(bound: float) -> list[Session]:
            keys = [_str(k) for k in await self.redis.zrangebyscore(due, "-inf", bound)]
            if chosen is not None:
                keys = [k for k in keys if k in chosen]
            return [s for s in await self._rows(keys, body=True) if s.deadline is not None]

        guess = await self._top_due(due, chosen, top)
        if guess is not None:
            rows = await under(guess)
            first = query(rows, offset=offset, limit=limit).rows
            if len(first) == limit and first[-1].deadline is not None \
                    and first[-1].deadline <= guess:
                return total, list(first)
            if len(rows) >= top:  # `top` rows have a deadline <= the top-th of them
                bound = query(rows, offset=top - 1, limit=1).rows[0].deadline
                assert bound is not None
                rows = await under(bound)
                return total, list(query(rows, offset=offset, limit=limit).rows)
        # Fewer than `top` keys with a deadline: all of them, then the others by key.
        with_deadline = await under(math.inf)
        if chosen is None:
            chosen = set(await self._keys())
        with_deadline = [s for s in with_deadline if s.key in chosen]
        dated = {s.key for s in with_deadline}
        out = list(query(with_deadline, offset=offset, limit=limit).rows)
        rest = sorted(k for k in chosen if k not in dated)
        start = max(0, offset - len(with_deadline))
        out += await self._rows(rest[start:start + limit - len(out)], body=False)
        return total, out

    async def _top_due(self, due: str, chosen: set[str] | None, top: int) -> float | None:
        """The `top`-th smallest `due` time (among `chosen`), None if fewer have one."""
        if chosen is None:
            found = await self.redis.zrange(due, top - 1, top - 1, withscores=True)
            return float(found[0][1]) if found else None
        seen, start = 0, 0
        while True:
            batch: list[Any] = await self.redis.zrange(due, start, start + CHUNK - 1,
                                                       withscores=True)
            if not batch:
                return None
            for key, score in batch:
                if _str(key) in chosen:
                    seen += 1
                    if seen == top:
                        return float(score)
            start += CHUNK
