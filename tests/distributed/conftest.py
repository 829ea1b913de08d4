"""Redis for the fleet tests. The fault-injection suite starts its own redis-server processes
(it kills and restarts them); the quick tests use `redis_url` (tests/conftest.py): the
server `.ci/run` starts, or one started there. No redis-server binary: they are skipped."""

from __future__ import annotations

import shutil
import uuid

import pytest

pytest.importorskip("redis")


@pytest.fixture
def prefix() -> str:
    """Each test's own key prefix on a shared server."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def need_redis_binary() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("the fault-injection suite needs redis-server and redis-cli")
