"""A real Redis server for the Redis tests: the one `.ci/run` starts (CONVO_FSM_REDIS_URL),
else one started here from the `redis-server` binary, else those tests are skipped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("CONVO_FSM_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: apt-get install redis-server (or set CONVO_FSM_REDIS_URL)")
    pytest.importorskip("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--loglevel", "notice"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # a blocking read until the server says it is ready
        if "Ready to accept connections" in line:
            break
    else:
        pytest.fail(f"redis-server on port {port} exited with {proc.wait()}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def redis_prefix() -> str:
    """Each test's own key prefix on the shared server."""
    return f"test:{uuid.uuid4().hex[:12]}:"
