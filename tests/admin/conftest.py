"""A real Redis server for the admin's Redis store mode (the one `.ci/run` starts, named by
CONVO_FSM_REDIS_URL, else one started here from `redis-server`, else those tests skip)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def admin_redis_url() -> Iterator[str]:
    url = os.environ.get("CONVO_FSM_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set CONVO_FSM_REDIS_URL or install redis-server")
    pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.PIPE, text=True)
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
