"""Fault injection: real redis-server processes and real fleet worker processes (fleet_proc.py),
a randomised load of events for many keys and timers, and faults injected while it runs:

- SIGKILL of a worker while one of its actions is running;
- SIGSTOP of a worker (inside an action) until every partition it held is owned by others,
  then SIGCONT (it must notice and write nothing);
- redis-server killed (SIGKILL) and started again on its append-only file (fsync always);
- a worker joining and one leaving (SIGTERM: drain, release) under load;
- clock skew: each worker's local clock is off by a different amount (-30 s .. +30 s).

Afterwards, from the committed sessions, the hosts' results and replies and the actions' own
fenced journal: no acknowledged event lost, none applied twice, per-key arrival order, never
two workers inside one key's action at once, every timeout fired exactly once, never early,
late by at most the takeover time. The figures are printed (pytest -s shows them)."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from fleet_harness import RedisProc, Workers, journals, make_cluster, overlaps, until

from convo_fsm.context import Reply
from convo_fsm.storage.fleet import FleetHost

pytestmark = pytest.mark.slow

LEASE = 1.0
PARTS = 12
TIMER = 1.5  # fleet_proc.TIMER
WAIT = 60.0


class Load:
    """One coroutine per chat key sends numbered events one after another (each awaited: the
    arrival order is the send order) and keeps those acknowledged (deliver returned True)."""

    def __init__(self, host: FleetHost, keys: list[str], rng: random.Random) -> None:
        self.host, self.rng = host, rng
        self.acked: dict[str, list[str]] = {k: [] for k in keys}
        self.running = asyncio.Event()
        self.running.set()
        self.stopping = False
        self.inflight = 0
        self.count = 0
        self.refused: list[str] = []
        self.tasks = [asyncio.ensure_future(self._loop(k)) for k in keys]

    async def _loop(self, key: str) -> None:
        i = 0
        while not self.stopping:
            await self.running.wait()
            if self.stopping:
                return
            text = f"{key}#{i}" + (":slow" if self.rng.random() < 0.3 else "")
            self.inflight += 1
            try:
                ok = await self.host.deliver(key, text)
            finally:
                self.inflight -= 1
            if not ok:
                self.refused.append(text)
            else:
                self.acked[key].append(text)
                self.count += 1
            i += 1

    async def pause(self) -> None:
        self.running.clear()
        await until(lambda: self.inflight == 0, WAIT, "the events in flight to be answered")

    def resume(self) -> None:
        self.running.set()

    async def progress(self, n: int) -> None:
        target = self.count + n
        await until(lambda: self.count >= target, WAIT, f"{n} more acknowledged events")

    async def stop(self) -> None:
        self.stopping = True
        self.running.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), WAIT)


async def lease_holders(client: Any, prefix: str) -> dict[int, str]:
    out = {}
    for p in range(PARTS):
        got = await client.get(f"{prefix}{{p{p}}}:lease")
        if got:
            out[p] = got.split("|", 1)[1]
    return out


async def inside_action(client: Any, prefix: str, candidates: list[str]) -> str | None:
    """A worker among `candidates` that is inside an action right now (its last journal note
    for some key is an `enter`)."""
    for entries in await journals(client, prefix, PARTS):
        last: dict[str, tuple[str, str]] = {}
        for entry in entries:
            key, text, worker, _ = entry.split("\t")
            last[key] = (text.split(" ", 1)[0], worker)
        for what, worker in last.values():
            if what == "enter" and worker in candidates:
                return worker
    return None


async def committed(client: Any, prefix: str, key: str) -> dict[str, Any] | None:
    from convo_fsm.storage.partition import partition_of

    body = await client.hget(f"{prefix}{{p{partition_of(key, PARTS)}}}:s", key)
    if body is None:
        return None
    return dict(json.loads(body.split("\t", 2)[2])["data"])


async def scenario(client: Any, url: str, prefix: str, folder: Path, faults: list[str],
                   redis: RedisProc | None, cluster: bool, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    workers = Workers(url, prefix, PARTS, folder, lease=LEASE, cluster=cluster)
    fired: list[Reply] = []
    host = FleetHost(client, prefix=prefix, partitions=PARTS, send=fired.append, timeout=WAIT)
    figures: dict[str, Any] = {"faults": 0, "redis_down_s": 0.0}
    timers: list[str] = []
    try:
        for wid, skew in (("w1", 30.0), ("w2", -30.0), ("w3", 0.0)):
            workers.spawn(wid, skew)
        await host.open()
        await until(lambda: workers.ready("w1", "w2", "w3"), WAIT, "three workers ready")
        keys = [f"chat{i}" for i in range(30)]
        for key in keys:
            assert await host.start("tally", key)

        async def start_timers(n: int) -> None:
            for _ in range(n):
                key = f"timer{len(timers)}"
                assert await host.start("timer", key)
                timers.append(key)

        await start_timers(6)
        load = Load(host, keys, rng)
        await load.progress(150)

        async def worker_in_action() -> str:
            """Wait until some live worker is inside an action; its id."""
            victim = None

            async def found() -> bool:
                nonlocal victim
                victim = await inside_action(client, prefix, workers.alive())
                return victim is not None

            await until(found, WAIT, "a worker inside an action")
            assert victim is not None
            return victim

        async def inject(fault: str) -> None:
            if fault == "kill":
                victim = await worker_in_action()
                workers.signal(victim, signal.SIGKILL)
                figures["killed"] = victim
            elif fault == "stop":
                victim = await worker_in_action()
                workers.signal(victim, signal.SIGSTOP)

                async def taken() -> bool:
                    return victim not in (await lease_holders(client, prefix)).values()

                await until(taken, WAIT, f"{victim}'s partitions taken by others")
                await load.progress(50)  # the others go on meanwhile
                workers.signal(victim, signal.SIGCONT)
                figures["stopped"] = victim
            elif fault == "join":
                wid = f"w{len(workers.procs) + 1}"
                workers.spawn(wid, 7.0)

                async def joined() -> bool:
                    return wid in (await lease_holders(client, prefix)).values()

                await until(joined, WAIT, f"{wid} to own a partition")
            elif fault == "leave":
                wid = sorted(workers.alive())[0]
                workers.signal(wid, signal.SIGTERM)
                await until(lambda: workers.procs[wid].poll() is not None, WAIT,
                            f"{wid} to drain and exit")
                assert workers.procs[wid].returncode == 0, workers.log(wid)[-2000:]
                assert "figures" in workers.output(wid)
            elif fault == "redis":
                assert redis is not None
                await load.pause()
                t0 = time.monotonic()
                redis.kill()
                redis.start()
                load.resume()
                await load.progress(20)
                figures["redis_down_s"] = time.monotonic() - t0
            else:
                raise AssertionError(fault)

        for fault in faults:
            await start_timers(4)  # due during or after the fault
            await inject(fault)
            figures["faults"] += 1
            await load.progress(150)
        await load.stop()

        async def all_fired() -> bool:
            for key in timers:
                data = await committed(client, prefix, key)
                if data is None or "fired" not in data:
                    return False
            return True

        await until(all_fired, WAIT, "every timer to fire")
        await until(lambda: len({r.to for r in fired if r.text == "fired"}) == len(timers),
                    WAIT, "every timer's reply")
        # -- the checks ----------------------------------------------------------------------
        violations: list[str] = []
        events = 0
        for key in keys:
            data = await committed(client, prefix, key)
            seen = [] if data is None else list(data.get("seen", []))
            events += len(load.acked[key])
            if seen != load.acked[key]:
                lost = [t for t in load.acked[key] if t not in seen]
                twice = sorted({t for t in seen if seen.count(t) > 1})
                violations.append(f"{key}: lost {lost[:5]}, twice {twice[:5]}, "
                                  f"order ok: {sorted(seen) == sorted(load.acked[key])}")
        if load.refused:
            violations.append(f"events handed back: {load.refused[:5]}")
        late_bound = LEASE + 3 * (LEASE / 5) + 1.0 + figures["redis_down_s"]
        worst = 0.0
        for key in timers:
            data = await committed(client, prefix, key)
            assert data is not None
            late = data["fired_at"] - data["due"]
            worst = max(worst, late)
            replies = [r for r in fired if r.to == key and r.text == "fired"]
            if data["fired"] != 1 or len(replies) != 1:
                violations.append(f"{key}: fired {data['fired']} times, {len(replies)} replies")
            if late < -0.01:
                violations.append(f"{key}: fired {-late:.3f} s early")
            if late > late_bound:
                violations.append(f"{key}: fired {late:.3f} s late (bound {late_bound:.2f})")
        overlap, entered, fenced_off = overlaps(await journals(client, prefix, PARTS))
        if overlap:
            violations.append(f"{overlap} overlapping actions")
        takeovers = 0
        for p in range(PARTS):
            takeovers += int(await client.get(f"{prefix}{{p{p}}}:fence") or 0)
        figures.update(events=events, keys=len(keys), timers=len(timers), actions=entered,
                       fenced_off_actions=fenced_off, takeovers=takeovers,
                       worst_timer_late_s=round(worst, 3), violations=len(violations),
                       host_round_trips=host.round_trips)
        print(f"\nfleet faults {faults} (cluster={cluster}): " + json.dumps(figures))
        assert not violations, violations
        return figures
    finally:
        await host.close()
        workers.close()


async def test_faults_on_one_redis_server(tmp_path: Path, need_redis_binary: None) -> None:
    import redis.asyncio as aioredis

    server = RedisProc(tmp_path / "redis", aof=True)
    server.start()
    # Commands on a connection the restarted server closed are retried once on a new one (the
    # load is paused while Redis is down, so no event is queued twice by a retry).
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = aioredis.Redis.from_url(server.url, decode_responses=True,
                                     retry=Retry(NoBackoff(), 2),
                                     retry_on_error=[RedisConnectionError])
    try:
        await scenario(client, server.url, "f:", tmp_path,
                       ["kill", "join", "stop", "redis", "leave"], server, False, seed=13)
    finally:
        await client.aclose()
        server.stop()


async def test_faults_on_a_redis_cluster(tmp_path: Path, need_redis_binary: None) -> None:
    import redis.asyncio as aioredis

    nodes = make_cluster(tmp_path / "cluster")
    url = nodes[0].url
    client = aioredis.RedisCluster.from_url(url, decode_responses=True)
    try:
        await scenario(client, url, "c:", tmp_path, ["kill", "join", "leave"], None, True,
                       seed=17)
    finally:
        await client.aclose()
        for node in nodes:
            node.stop()


def test_a_cluster_node_on_a_port_above_55535_starts(tmp_path: Path,
                                                     need_redis_binary: None) -> None:
    """Regression: a free port from the kernel's ephemeral range (up to 60999 here) made a
    cluster node exit, its default bus port (port + 10000) being past 65535."""
    import socket

    for port in range(60999, 55535, -1):  # the highest free one
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        break
    node = RedisProc(tmp_path / "high", cluster=True, port=port)
    try:
        node.start()
        assert node.proc is not None and node.proc.poll() is None
    finally:
        node.stop()
