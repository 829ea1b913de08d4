"""Fixtures of the Redis tests (the server itself is `redis_url`, in tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def redis_prefix() -> str:
    """Each test's own key prefix on the shared server."""
    return f"test:{uuid.uuid4().hex[:12]}:"
