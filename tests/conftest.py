"""Hypothesis profiles for the whole suite (HYPOTHESIS_PROFILE, see tests/budget.py).

`default` (README's test command) runs the property-based tests with a fifth of their
stated examples, so the suite takes a couple of minutes; `ci` (`.ci/run` runs every property
test again with it) runs the stated counts; `long` runs 20 times them with more steps, e.g.
in a nightly job:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/testing tests/core
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None)
settings.register_profile(
    "long", deadline=None, max_examples=2000, stateful_step_count=200,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _tracemalloc_left_off() -> Iterator[None]:
    """A test that leaves tracemalloc tracing makes every later test several times slower
    (a benchmark's memory scenario once did: the suite took 5 minutes instead of 2)."""
    yield
    if tracemalloc.is_tracing():
        tracemalloc.stop()
        pytest.fail("this test left tracemalloc tracing on (tracemalloc.stop() it)")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server for the tests that need one: the one `.ci/run` starts
    (CONVO_FSM_REDIS_URL), else one started here from the `redis-server` binary on a free
    loopback port, else those tests are skipped."""
    url = os.environ.get("CONVO_FSM_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: apt-get install redis-server (or set CONVO_FSM_REDIS_URL)")
    pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
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
