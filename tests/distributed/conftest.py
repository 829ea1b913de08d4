"""Redis for the fleet tests. The fault-injection suite starts its own redis-server processes
(it kills and restarts them); the quick tests use the server `.ci/run` starts
(CONVO_FSM_REDIS_URL) or one started here. No redis-server binary: those tests are skipped."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("CONVO_FSM_REDIS_URL")
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        pytest.skip("no Redis: set CONVO_FSM_REDIS_URL or install redis-server")
    from fleet_harness import RedisProc

    server = RedisProc(Path(tmp_path_factory.mktemp("redis")), aof=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """Each test's own key prefix on a shared server."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def need_redis_binary() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("the fault-injection suite needs redis-server and redis-cli")
