"""Partitions: which partition a session key belongs to, which worker owns a partition, and
the Redis key layout of one partition (pure functions, no I/O).

- `partition_of(key, n)`: a stable hash (CRC-32) of the key, modulo the fixed partition count.
  Every process computes the same answer, so a host knows where to send an event.
- `owner(p, workers)`: rendezvous (highest-random-weight) hashing over the live workers:
  every worker ranks itself for each partition with the same hash, the highest wins. A worker
  joining takes about 1/N of the partitions, each from whoever had it; a worker leaving hands
  only its own partitions to the others. Nothing else moves.
- `Layout`: every key of partition `p` carries the Redis Cluster hash tag `{p<n>}` (the same
  slot), so each Lua script touches one slot and runs on one redis-server or a Cluster alike.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

import attrs

__all__ = ["Layout", "assign", "owner", "partition_of"]


def partition_of(key: str, partitions: int) -> int:
    """The partition of session key `key` (0 .. partitions-1)."""
    return zlib.crc32(key.encode("utf-8")) % partitions


def _weight(worker: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{worker}/{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(partition: int, workers: Iterable[str]) -> str | None:
    """The worker that should own `partition` among `workers` (None: no worker is live)."""
    best: tuple[int, str] | None = None
    for worker in workers:
        cand = (_weight(worker, partition), worker)
        if best is None or cand > best:
            best = cand
    return None if best is None else best[1]


def assign(partitions: int, workers: Iterable[str]) -> dict[str, set[int]]:
    """Each live worker's partitions (every partition exactly once)."""
    live = sorted(set(workers))
    out: dict[str, set[int]] = {w: set() for w in live}
    for p in range(partitions):
        who = owner(p, live)
        if who is not None:
            out[who].add(p)
    return out


@attrs.frozen
class Layout:
    """Redis key names under `prefix` for `partitions` partitions.

    Per partition p (tag `{p<p>}`): `lease` (owner's fencing token and worker id, with an
    expiry), `fence` (the token counter, never deleted), `ev` (the event stream, consumer
    group `g`), `rev` and `s` (hashes: session key -> revision / stored record), `out` (the
    committed replies and results waiting to be forwarded) and `journal` (fenced notes
    written by actions, see `FleetWorker.journal`). Shared: `members` (heartbeats), per host
    `host:<id>` (its results stream) and `outbox` (replies nobody waits for: timers).
    """

    prefix: str = "convo:"
    partitions: int = 256

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.partitions, int) or not 1 <= self.partitions <= 16384:
            raise ValueError(f"partitions must be an int in 1..16384, got {self.partitions!r}")
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"a key prefix cannot contain braces (hash tags): {self.prefix!r}")

    def part(self, p: int, name: str) -> str:
        return f"{self.prefix}{{p{p}}}:{name}"

    def of(self, key: str) -> int:
        return partition_of(key, self.partitions)

    @property
    def members(self) -> str:
        return f"{self.prefix}{{members}}"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}{{outbox}}"

    def host(self, host_id: str) -> str:
        return f"{self.prefix}{{host:{host_id}}}"
