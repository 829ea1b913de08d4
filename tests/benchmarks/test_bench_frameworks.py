"""The bot-framework benchmark scenarios keep working (aiogram's FSM, NoneBot's got, and
convo_fsm through each adapter): each once at a tiny size, in its own process. Nothing here
asserts a timing; each scenario itself checks that a delivery reached the waiting user's
handler and an ordinary message the catch-all one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import env, report
from benchmarks.common import MARK
from benchmarks.run import framework_jobs, jobs

# Each scenario process imports its framework (aiogram alone: ~5 s here) and runs every mode.
pytestmark = pytest.mark.slow


def _smoke(module: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.scenarios.{module}",
                           "--workload", "smoke", "--size", "0"], capture_output=True,
                          text=True, cwd=env.ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1][len(MARK):])
    return result


SMOKES: dict[str, dict[str, Any]] = {}


def smoke(module: str) -> dict[str, Any]:
    """The scenario's smoke run (once per module: importing aiogram alone takes seconds)."""
    pytest.importorskip({"ptb_adapter": "telegram"}.get(module, module))
    if module not in SMOKES:
        SMOKES[module] = _smoke(module)
    return SMOKES[module]


@pytest.mark.parametrize(("module", "own"), [("aiogram", "fsm"), ("nonebot", "got"),
                                             ("ptb_adapter", "conv")])
def test_framework_scenarios_run(module: str, own: str) -> None:
    result = smoke(module)
    for key in ("ordinary_bare", f"ordinary_{own}", "ordinary_convo", f"deliver_{own}",
                "deliver_convo"):
        s = result[key]["us_per_event"]
        assert 0 < s["min"] <= s["median"] <= s["max"], key
    for key in (f"memory_{own}", "memory_convo"):
        assert result[key]["bytes_per_session"] > 0, key


def test_framework_jobs_are_in_the_run_and_reported(tmp_path: Path) -> None:
    full = jobs(False, astrbot=False, ptb=False, compat=False,
                frameworks=("aiogram", "nonebot", "ptb_adapter"))
    assert max(j.size for j in full if j.module == "ptb_adapter" and j.mode == "conv") == 10_000
    got = [j for j in full if j.module == "nonebot" and j.mode == "got"]
    assert max(j.size for j in got) == 10_000  # O(N) per event: not at 100k
    assert max(j.size for j in full if j.module == "aiogram") == 100_000
    assert {(j.module, j.workload, j.mode) for j in full if j.module == "aiogram"} >= {
        ("aiogram", "deliver", "fsm"), ("aiogram", "deliver", "convo"),
        ("aiogram", "ordinary", "bare"), ("aiogram", "memory", "convo")}
    assert framework_jobs(("aiogram",), False, True)[0].size == 3
    measured = smoke("aiogram")
    results = [{"system": "aiogram", "workload": w, "mode": m, "size": 3, **measured[f"{w}_{m}"]}
               for w, m in (("ordinary", "bare"), ("ordinary", "convo"), ("deliver", "fsm"),
                            ("deliver", "convo"), ("memory", "fsm"), ("memory", "convo"))]
    run = {"command": "python -m benchmarks", "machine": env.machine(None), "started": "now",
           "results": results}
    report.write(run, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## 10. Inside bot frameworks" in text
    assert "aiogram adapter: an ordinary message within 1.5x of aiogram's bare dispatch" in text
