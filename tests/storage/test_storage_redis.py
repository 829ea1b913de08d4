"""Redis: the engine on a RedisStore, and RedisWorkers sharing keys, in one process and in
two worker processes against a real redis-server (see conftest.py)."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from convo_fsm import KEEP, STOP, Context, Engine, On, Reply, Spec, State, Timeout, VirtualClock
from convo_fsm.storage import RedisStore, RedisWorker, StoreError, open_store

pytest.importorskip("redis")

WORKER = Path(__file__).with_name("redis_worker.py")
WAIT = 60.0  # the longest a blocking read or wait may take before the test fails


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(redis_url, prefix=redis_prefix)
    yield s
    await s.close()


def spec(timeout: float = 3600.0) -> Spec:
    def record(ctx: Context) -> None:
        ctx.data.setdefault("seen", []).append(ctx.text)
        ctx.reply(f"got {ctx.text}")

    def fired(ctx: Context) -> None:
        ctx.data["fired"] = ctx.data.get("fired", 0) + 1
        ctx.reply("fired")

    return Spec("tally", "on", [
        State("on", on=[On("message", KEEP, action=record, reset_timeout=False)],
              timeout=Timeout(timeout, "timed", action=fired)),
        State("timed", on=[On("message", KEEP, action=record)]),
    ], any_state=[On("done", STOP)])


async def data(store: RedisStore, key: str) -> dict[str, Any]:
    got = await store.load(key)
    assert got is not None, key
    return got.session.data


async def test_open_store_and_a_bad_record(store: RedisStore, redis_url: str) -> None:
    opened = open_store(redis_url)
    assert isinstance(opened, RedisStore)
    await opened.close()
    await store.redis.hset(store.k("s", "bad"), mapping={"body": "{oops", "fp": "x", "rev": 1})
    await store.redis.sadd(store.k("all"), "bad")
    assert await store.list() == []  # skipped, reported
    with pytest.raises(StoreError, match="not JSON"):
        await store.load("bad")
    assert await store.delete("bad") is True


def test_sessions_cli_on_redis(redis_url: str, redis_prefix: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from convo_fsm.cli import main

    url = f"{redis_url}?prefix={redis_prefix}"

    async def fill() -> None:
        store = RedisStore.from_url(url)
        assert store.prefix == redis_prefix
        engine, tally = Engine(clock=VirtualClock(), store=store), spec()
        await engine.start(tally, "a")
        await engine.start(tally, "b")
        await store.close()

    async def keys() -> list[str]:
        store = RedisStore.from_url(url)
        try:
            return [s.session.key for s in await store.list()]
        finally:
            await store.close()

    asyncio.run(fill())
    assert main(["sessions", "--store", url, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["key"], r["state"]) for r in rows] == [("a", "on"), ("b", "on")]
    assert main(["sessions", "--store", url, "--stop", "a"]) == 0
    assert asyncio.run(keys()) == ["b"]
    assert main(["sessions", "--store", url, "--force", "b", "timed"]) == 2
    assert "spec 'tally' of 'b' is not a game's: name it with --spec" in capsys.readouterr().err


async def test_an_engine_restarts_on_redis(store: RedisStore) -> None:
    tally = spec(10)
    engine = Engine(clock=VirtualClock(), store=store)
    await engine.start(tally, "a")
    await engine.deliver("a", "x")
    engine2 = Engine(clock=VirtualClock(15), store=store)
    assert [s.key for s in await engine2.restore([tally])] == ["a"]
    assert [r.text for r in engine2.outbox] == ["fired"]  # due while down: fired at start
    assert await data(store, "a") == {"seen": ["x"], "fired": 1}


async def test_two_workers_interleave_events_on_the_same_keys(store: RedisStore) -> None:
    tally = spec()
    replies: list[Reply] = []
    a = RedisWorker(store, [tally], send=replies.append, poll=0.01)
    b = RedisWorker(store, [tally], send=replies.append, poll=0.01)
    async with a, b:
        for key in ("k1", "k2"):
            assert await a.start(tally, key) is not None
        assert await b.start(tally, "k1") is None  # a live session is never replaced
        sends = [(w, key, f"{key}-{i}") for i in range(15) for key in ("k1", "k2")
                 for w in (a, b)]
        await asyncio.gather(*(w.deliver(key, text) for w, key, text in sends))
    for key in ("k1", "k2"):
        seen = (await data(store, key))["seen"]
        want = sorted(text for _, k, text in sends if k == key)
        assert sorted(seen) == want and len(seen) == 30  # none lost, none twice
    assert len(replies) == 60
    assert not await store.redis.keys(store.k("lock", "*"))  # every lock let go


async def test_a_timeout_fires_once_with_two_workers(store: RedisStore) -> None:
    tally = spec(0.05)
    fired: asyncio.Queue[str] = asyncio.Queue()

    def send(r: Reply) -> None:
        if r.text == "fired":
            fired.put_nowait(r.to)

    a = RedisWorker(store, [tally], send=send, poll=0.01)
    b = RedisWorker(store, [tally], send=send, poll=0.01)
    keys = [f"t{i}" for i in range(8)]
    async with a, b:
        for i, key in enumerate(keys):
            await (a if i % 2 else b).start(tally, key)
        got = [await asyncio.wait_for(fired.get(), WAIT) for _ in keys]
    assert sorted(got) == keys and fired.empty()
    for key in keys:
        d = await data(store, key)
        assert d.get("fired") == 1
    assert await store.redis.zcard(store.k("due")) == 0  # `timed` has no timeout


# -- two worker processes ----------------------------------------------------------------
class Proc:
    def __init__(self, url: str, prefix: str, *extra: str, lines: queue.Queue[str]) -> None:
        self.name = extra[0] if extra else "w"
        self.proc = subprocess.Popen([sys.executable, str(WORKER), url, prefix, *extra[1:]],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)
        self.lines = lines
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(f"{self.name} {line.rstrip()}")
        self.lines.put(f"{self.name} <exit>")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()


def read_until(lines: queue.Queue[str], done: Any) -> list[str]:
    """Blocking reads (each at most WAIT s) until `done(seen_so_far)` is true."""
    seen: list[str] = []
    while not done(seen):
        seen.append(lines.get(timeout=WAIT))
    return seen


async def test_two_worker_processes(store: RedisStore, redis_url: str,
                                    redis_prefix: str) -> None:
    lines: queue.Queue[str] = queue.Queue()
    a = Proc(redis_url, redis_prefix, "A", "--hang-on", "slow", lines=lines)
    b = Proc(redis_url, redis_prefix, "B", "--hang-on", "slow", lines=lines)
    try:
        # 1. Interleaved events for the same keys from both processes.
        a.send("start k1")
        b.send("start k2")
        read_until(lines, lambda seen: sum(s.endswith(" ok") for s in seen) == 2)
        texts = [f"m{i}" for i in range(20)]
        for i, text in enumerate(texts):
            for key in ("k1", "k2"):
                (a if i % 2 else b).send(f"say {key} {text}")
        got = read_until(lines, lambda seen: sum(" committed k" in f" {s}" and " m" in s
                                                 for s in seen) == 40)
        assert sorted(s.split(" ", 1)[1] for s in got if " got m" in s) == sorted(
            f"reply {key} got {text}" for key in ("k1", "k2") for text in texts)
        for key in ("k1", "k2"):
            seen = (await data(store, key))["seen"]
            assert sorted(seen) == sorted(texts) and len(seen) == 20

        # 2. The worker that takes `slow` hangs in its action (either may: both poll for
        # queued keys) and is killed there; the other takes the key after its lock expires.
        a.send("say k1 slow")
        got = read_until(lines, lambda seen: any(" hanging k1 slow" in s for s in seen))
        dead, alive = (a, b) if any(s.startswith("A hanging") for s in got) else (b, a)
        dead.proc.send_signal(signal.SIGKILL)
        assert dead.proc.wait(timeout=WAIT) == -signal.SIGKILL
        alive.send("say k1 after")
        got = read_until(lines, lambda seen: f"{alive.name} committed k1 after" in seen)
        # The event the dead one was handling is handled again (it never committed), then
        # the new one.
        assert [s for s in got if " got " in s] == [f"{alive.name} reply k1 got slow",
                                                   f"{alive.name} reply k1 got after"]
        assert (await data(store, "k1"))["seen"][-2:] == ["slow", "after"]
        alive.quit()
        read_until(lines, lambda seen: f"{alive.name} <exit>" in seen)
        assert alive.proc.wait(timeout=WAIT) == 0
    finally:
        for p in (a, b):
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(timeout=WAIT)


async def test_two_worker_processes_fire_each_timeout_once(
        store: RedisStore, redis_url: str, redis_prefix: str) -> None:
    lines: queue.Queue[str] = queue.Queue()
    a = Proc(redis_url, redis_prefix, "A", "--timeout", "0.2", lines=lines)
    b = Proc(redis_url, redis_prefix, "B", "--timeout", "0.2", lines=lines)
    keys = [f"t{i}" for i in range(10)]
    try:
        for i, key in enumerate(keys):
            (a if i % 2 else b).send(f"start {key}")
        read_until(lines, lambda seen: sum(s.endswith(" fired") for s in seen) == len(keys))
        a.quit()
        b.quit()
        rest = read_until(lines, lambda seen: sum(s.endswith("<exit>") for s in seen) == 2)
        assert not any(s.endswith(" fired") for s in rest)  # none fired a second time
        for key in keys:
            assert (await data(store, key)) == {"fired": 1}
        assert a.proc.wait(timeout=WAIT) == 0 and b.proc.wait(timeout=WAIT) == 0
    finally:
        for p in (a, b):
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(timeout=WAIT)


def test_events_travel_as_json() -> None:
    from convo_fsm import Message
    from convo_fsm.storage.redis import decode_event, encode_event

    m = Message("你好 /x", sender="bob", group="g1", platform="qq")
    assert decode_event(encode_event(m, "id1")) == ("id1", m)
    assert decode_event(encode_event("plain", "id2")) == ("id2", "plain")
    assert json.loads(encode_event("x", "i"))["id"] == "i"
    with pytest.raises(Exception, match="Messages or strs"):
        encode_event(42, "i")
