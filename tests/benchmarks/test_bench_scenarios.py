"""The benchmark scripts keep working: each scenario once, at a tiny size.

Benchmarks are not tests: nothing here asserts a timing. It checks that every scenario
runs, reports the numbers the report needs, and that the report and plots get written.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from benchmarks import env, report
from benchmarks.common import MARK
from benchmarks.run import Job, jobs, run_job
from benchmarks.scenarios import convo, step
from convo_fsm.cli import build_parser, main
from convo_fsm.cli.bench import checkout


def _per_event_ok(result: dict[str, Any]) -> None:
    s = result["us_per_event"]
    assert 0 < s["min"] <= s["median"] <= s["max"]


async def test_convo_workloads_run_at_a_tiny_size() -> None:
    _per_event_ok(await convo.deliver(3, 20, 2, 0.05, "route"))
    _per_event_ok(await convo.deliver(3, 20, 1, 0.05, "direct"))
    _per_event_ok(await convo.ordinary(0, 20, 1, 0.05))
    _per_event_ok(await convo.ordinary(3, 20, 1, 0.05))
    mem = await convo.memory(50, "tracemalloc")
    assert mem["bytes_per_session"] > 0 and mem["tasks_per_session"] == 0
    # and tracing is off again: left on, it made every later test several times slower
    assert not tracemalloc.is_tracing()
    life = await convo.lifecycle(5, 1)
    for key in ("start_s", "stop_s", "expire_lag_s"):
        assert life[key]["median"] >= 0
    assert life["expire_lag_s"]["median"] < 60  # the timeouts did fire (not after 3600 s)


@pytest.mark.parametrize("system", step.SYSTEMS)
def test_step_systems_do_the_same_work(system: str) -> None:
    result = step.run(system, 3, 30, 1, 0.05)
    _per_event_ok(result)
    assert result["create_us"] > 0


def test_dict_fsm_keeps_and_stops_like_the_spec() -> None:
    s = step.dict_new("k", 0.0)
    assert step.dict_step(s, "message", 5.0) == [("arm", 65.0), ("run", step.handler)]
    assert (s["deadline"], s["generation"], s["state"]) == (65.0, 1, "waiting")
    assert step.dict_step(s, "nothing", 6.0) is None
    assert step.dict_step(s, "stop", 7.0) == [("arm", None), ("end", "stop")]


def test_a_job_runs_in_its_own_process_and_reports_json() -> None:
    result = run_job(Job("convo", "ordinary", 2, "route", reps=2, events=20, budget=0.05),
                     sys.executable)
    assert "error" not in result, result
    assert result["system"] == "convo_fsm" and result["size"] == 2
    assert len(result["reps_us"]) == 2  # type: ignore[arg-type]


def test_a_failing_job_is_reported_not_raised() -> None:
    result = run_job(Job("convo", "no-such-workload", 2), sys.executable)
    assert "error" in result and "invalid choice" in str(result["error"])


def test_job_lists_cover_every_workload() -> None:
    full = jobs(False, astrbot=True, ptb=True, compat=False)
    assert {j.workload for j in full} >= {"deliver", "ordinary", "memory", "lifecycle",
                                          *step.SYSTEMS}
    assert max(j.size for j in full if j.module == "convo") == 1_000_000
    assert max(j.size for j in full if j.module == "astrbot") == 100_000
    quick = jobs(True, astrbot=True, ptb=True, compat=False)
    assert max(j.size for j in quick) <= 10_000 and len(quick) < len(full)


@pytest.mark.slow  # every plot drawn by matplotlib: about 10-25 s
def test_report_and_plots_are_written(tmp_path: Path) -> None:
    results = [run_job(j, sys.executable) for j in jobs(False, astrbot=False, ptb=False,
                                                        compat=False, tiny=True)
               if j.interpreter == "main" and j.workload in ("deliver", "memory", "convo-step",
                                                              "dict-fsm")]
    assert all("error" not in r for r in results), results
    run = {"command": "python -m benchmarks", "machine": env.machine(None), "started": "now",
           "results": results}
    report.write(run, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "convo_fsm Engine.dispatch" in text and "dict FSM (same work)" in text
    for name in report.PLOTS:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def _smoke(python: str, module: str) -> dict[str, Any]:
    proc = subprocess.run([python, "-m", f"benchmarks.scenarios.{module}", "--workload",
                           "smoke", "--size", "0"], capture_output=True, text=True,
                          cwd=env.ROOT, env=env.child_env(), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1][len(MARK):])
    return result


@pytest.fixture(scope="module")
def astrbot_python() -> str:
    python = env.astrbot_python(create=False)
    if python is None:
        if os.environ.get("CONVO_FSM_REQUIRE_ASTRBOT"):  # .ci/run builds .venv-astrbot
            pytest.fail("CONVO_FSM_REQUIRE_ASTRBOT is set but no venv has astrbot 4.29.3")
        pytest.skip(f"no .venv-astrbot with astrbot {env.ASTRBOT_VERSION}; build it (3-4 minutes, "
                    f"once) with: {env.astrbot_venv_command()}")
    return str(python)


@pytest.mark.slow  # a real AstrBot / PTB process
def test_astrbot_workloads_run_on_real_astrbot(astrbot_python: str) -> None:
    result = _smoke(astrbot_python, "astrbot")
    for name in ("deliver", "deliver_direct", "ordinary"):
        _per_event_ok(result[name])
    assert result["memory"]["tasks_per_session"] == 2  # AstrBot: plugin task + keep timer
    assert result["lifecycle"]["expire_lag_s"]["median"] < 60


@pytest.mark.slow  # a real AstrBot / PTB process
def test_ptb_conversation_handler_runs_offline(astrbot_python: str) -> None:
    result = _smoke(astrbot_python, "ptb")
    _per_event_ok(result["deliver"])
    assert result["lifecycle"]["expire_lag_s"]["median"] < 60


def test_compat_layer_workloads_run() -> None:
    result = _smoke(sys.executable, "compat")
    _per_event_ok(result["deliver"])
    _per_event_ok(result["ordinary"])
    assert result["memory"]["tasks_per_session"] == 1  # the plugin coroutine awaiting


async def test_heartbeat_sees_a_loop_that_never_yields() -> None:
    import time

    from benchmarks.common import Heartbeat

    with Heartbeat() as hb:
        time.sleep(0.02)  # a blocked loop (this is the measuring tool's own check)
        await asyncio.sleep(0.003)
    assert hb.max_gap >= 0.015


def test_cli_bench_is_registered_and_finds_the_checkout() -> None:
    args = build_parser().parse_args(["bench", "--quick"])
    assert args.command == "bench" and args.quick and callable(args.func)
    assert checkout() == env.ROOT


@pytest.mark.parametrize("argv", [["bench", "--list"], ["bench", "--quick", "--", "--list"],
                                  ["bench", "--list", "--only", "deliver"]])
def test_cli_bench_passes_options_through(argv: list[str],
                                          capfd: pytest.CaptureFixture[str]) -> None:
    # `--list` prints the jobs of `python -m benchmarks` without running (or building) any.
    assert main(argv) == 0
    out, err = capfd.readouterr()
    listed = [line for line in out.splitlines() if " -m benchmarks.scenarios." in line]
    assert listed, out + err
    assert "unrecognized" not in err and "creating" not in err
    if "--only" in argv:
        assert all("--workload deliver" in line for line in listed)
