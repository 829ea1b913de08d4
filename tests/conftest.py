"""Hypothesis profiles for the whole suite.

`default` keeps the suite at a few minutes; `long` (HYPOTHESIS_PROFILE=long) runs the
property-based tests with many more examples and steps, e.g. in a nightly CI job:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/testing tests/core
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None)
settings.register_profile(
    "long", deadline=None, max_examples=2000, stateful_step_count=200,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

