"""How many examples the property-based tests run, by HYPOTHESIS_PROFILE (tests/conftest.py).

Each test states the count CI runs (`examples(n)` with n that count). The profiles:

- `default` (README's test command, no variable set): a fifth of it, at least one, so the
  whole suite stays within a few minutes on a 2-core machine;
- `ci` (`.ci/run` runs every property test again with it): the stated counts;
- `long` (a nightly or a hunt): 20 times the stated counts.
"""

from __future__ import annotations

import os

__all__ = ["FACTORS", "PROFILE", "examples"]

FACTORS = {"default": 0.2, "ci": 1.0, "long": 20.0}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
if PROFILE not in FACTORS:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r}: expected one of {', '.join(FACTORS)}")


def examples(n: int, *, slow: bool = False) -> int:
    """The number of examples to run for a test CI runs with `n`. A `slow` test (deselected
    by README's command, run by `.ci/run` with `-m slow`) is never scaled down."""
    scaled = max(1, round(n * FACTORS[PROFILE]))
    return max(n, scaled) if slow else scaled
