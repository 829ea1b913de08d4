"""Live updates over a real socket (uvicorn in the test's loop), the store mode and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_kit import QUIZ, Kit, serving

from convo_fsm import Engine
from convo_fsm.admin import StoreSource, app, store_app
from convo_fsm.storage import RedisStore, SqliteStore, Store, WallClock


async def events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    kind = None
    async for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "session":
            yield json.loads(line[6:])


async def test_a_state_change_made_by_the_engine_is_pushed_to_the_page(tmp_path: Path) -> None:
    kit = Kit()
    key = await kit.start("alice")
    admin = app(kit.engine, metrics=kit.metrics)
    async with (serving(admin) as base, httpx.AsyncClient() as c,
                c.stream("GET", f"{base}/events/session", params={"key": key}, timeout=10) as r):
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = events(r.aiter_lines())
        async with asyncio.timeout(10):
            first = await anext(stream)
            assert first["state"] == "asking" and first["seconds_left"] == 60
            assert await kit.say("alice", "/next")
            moved = await anext(stream)
            assert moved["state"] == "reminded" and moved["history"] == ["asking", "reminded"]
            assert await kit.say("alice", "hello") is False  # not handled there: no change
            kit.engine.stop(key)
            assert await anext(stream) == {"alive": False}


@pytest.fixture(params=["sqlite", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """A function opening the same store again (a new connection each time)."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "s.db")
    url = request.getfixturevalue("redis_url")
    prefix = f"admin-test:{uuid.uuid4().hex[:12]}:"
    return lambda: RedisStore.from_url(url, prefix=prefix)


async def test_the_store_mode_reads_and_acts_on_stored_records(
        open_store: Callable[[], Store]) -> None:
    engine = Engine(store=open_store(), clock=WallClock())
    for name in ("alice", "bob", "carol"):
        await engine.start(QUIZ, f"local:user:{name}")
    engine.force("local:user:bob", "reminded")
    await engine.close()  # sessions stay stored
    admin = store_app(open_store(), [QUIZ], token="store-admin-token")
    auth = {"authorization": "Bearer store-admin-token"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                 base_url="http://t") as c:
        listing = (await c.get("/sessions")).text
        assert "3</span> sessions" in listing
        assert listing.index("local:user:bob") < listing.index("local:user:alice")  # 30 s < 60 s
        page = (await c.get("/session", params={"key": "local:user:bob"})).text
        assert 'id="state">reminded<' in page
        metrics = (await c.get("/metrics")).text
        assert 'convo_fsm_live_sessions{spec="quiz",state="asking"} 2.0' in metrics
        assert 'convo_fsm_live_sessions{spec="quiz",state="reminded"} 1.0' in metrics
        assert (await c.post("/act/stop", data={"key": "local:user:alice"})).status_code == 403
        r = await c.post("/act/stop", data={"key": "local:user:alice"}, headers=auth)
        assert r.status_code == 303
        r = await c.post("/act/force", data={"key": "local:user:carol", "state": "reminded"},
                         headers=auth)
        assert r.status_code == 303
        r = await c.post("/act/deadline", data={"key": "local:user:bob", "mode": "set",
                                                "seconds": "500"}, headers=auth)
        assert r.status_code == 303
        after = (await c.get("/sessions")).text  # our own acts show at once
        assert "2</span> sessions" in after and "local:user:alice" not in after
        assert after.index("local:user:carol") < after.index("local:user:bob")
    fresh = open_store()
    stored = {s.session.key: s.session for s in await fresh.list()}
    assert sorted(stored) == ["local:user:bob", "local:user:carol"]
    assert stored["local:user:carol"].state == "reminded"
    left = stored["local:user:bob"].seconds_left(time.time())
    assert left is not None and 490 < left <= 500
    # An engine restarting on the store takes the admin's changes.
    engine = Engine(store=fresh, clock=WallClock())
    await engine.restore([QUIZ])
    assert engine.session("local:user:carol").state == "reminded"  # type: ignore[union-attr]
    assert engine.session("local:user:alice") is None
    await engine.close()


async def test_store_counts_older_than_max_age_are_served_while_they_are_reread(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = Engine(store=SqliteStore(path), clock=WallClock())
    await writer.start(QUIZ, "local:user:a")
    now = [100.0]
    source = StoreSource(SqliteStore(path), [QUIZ], max_age=1.0, monotonic=lambda: now[0])
    kept = source._counted
    assert (await source.counts())[0] == 1
    await writer.start(QUIZ, "local:user:b")  # written by someone else (a running bot)
    assert (await source.page()).total == 2  # a page is read by SQL each time: fresh
    assert (await source.counts())[0] == 1  # fresh enough: kept
    assert kept.refreshing is None
    now[0] += 1.5
    assert (await source.counts())[0] == 1  # the old count, a re-read started
    assert kept.refreshing is not None
    await kept.refreshing
    total, per_state = await source.counts()
    assert total == 2 and per_state == {("quiz", "asking"): 2}
    await writer.start(QUIZ, "local:user:c")
    now[0] += 60  # too old to serve: read again first
    assert (await source.counts())[0] == 3
    source.invalidate()
    await writer.start(QUIZ, "local:user:d")
    assert (await source.counts())[0] == 4  # after invalidate(): read again first
    await writer.close()


def test_serve_binds_to_localhost_and_prints_the_token_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "convo_fsm", "serve", "--store", str(path),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 2 and "--port must be 1-65535" in err
    bad = subprocess.run([sys.executable, "-m", "convo_fsm", "serve", "--store",
                          "ftp://x"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown store URL" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "convo_fsm", "serve", "--store", str(path),
                          "--spec", "no_such_module:SPEC"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "--spec 'no_such_module:SPEC'" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "convo_fsm", "serve", "--store", str(path),
                          "--token", "short"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "at least 8 characters" in bad.stderr
    with socket_port() as port:
        proc = subprocess.Popen([sys.executable, "-m", "convo_fsm", "serve", "--store",
                                 str(path), "--port", str(port)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first
        token_line = proc.stdout.readline()
        assert token_line.startswith("admin token (shown once): ")
        token = token_line.split(": ", 1)[1].strip()
        assert len(token) >= 24
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # waiting for the real server process to listen
        assert r.status_code == 200 and "Overview" in r.text
        r = httpx.post(f"http://127.0.0.1:{port}/act/stop", data={"key": "x"},
                       headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 404  # authorised, and there is no such session
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class socket_port:
    """A free local port (closed again before the server binds it)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        self.sock.close()
        return port

    def __exit__(self, *exc: object) -> None:
        pass
