"""Hypothesis profiles for the whole suite (HYPOTHESIS_PROFILE, see tests/budget.py).

`default` (README's test command) runs the property-based tests with a fifth of their
stated examples, so the suite takes a couple of minutes; `ci` (`.ci/run` runs every property
test again with it) runs the stated counts; `long` runs 20 times them with more steps, e.g.
in a nightly job:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/testing tests/core
"""

from __future__ import annotations

import os
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
