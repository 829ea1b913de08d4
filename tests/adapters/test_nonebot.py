"""Runs tests/nonebot_real (convo_fsm inside NoneBot2 with OneBot v11, through NoneBug) in
its own pytest process and asserts they passed. NoneBug's plugin initialises NoneBot in
session-scoped autouse fixtures on a session event loop, which the rest of the suite must
not have (it is disabled there with `-p no:nonebug`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nonebug")

ROOT = Path(__file__).resolve().parents[2]


def test_convo_fsm_inside_nonebot2_through_nonebug() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=-q", "-p", "nonebug",
         "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=session",
         "-o", "asyncio_default_test_loop_scope=session", "tests/nonebot_real"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and "skipped" not in run.stdout, report
