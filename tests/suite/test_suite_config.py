"""The test suite's own set-up: README's command runs a reduced property budget that CI runs
in full, pydot's warnings are filtered, and the AstrBot venv is one venv found one way."""

from __future__ import annotations

import importlib
import os
import stat
import tomllib
import warnings
from pathlib import Path

import budget
import pytest

from benchmarks import env

ROOT = Path(__file__).resolve().parents[2]


def _budget_under(monkeypatch: pytest.MonkeyPatch, profile: str | None) -> object:
    if profile is None:
        monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    else:
        monkeypatch.setenv("HYPOTHESIS_PROFILE", profile)
    return importlib.reload(budget)


def test_readme_command_runs_a_fifth_and_ci_the_stated_counts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        default = _budget_under(monkeypatch, None)
        assert default.examples(1000) == 200 and default.examples(3) == 1  # type: ignore[attr-defined]
        assert default.examples(3, slow=True) == 3  # type: ignore[attr-defined]
        ci = _budget_under(monkeypatch, "ci")
        assert ci.examples(1000) == 1000 and ci.examples(60) == 60  # type: ignore[attr-defined]
        long = _budget_under(monkeypatch, "long")
        assert long.examples(60) == 1200  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="expected one of default, ci, long"):
            _budget_under(monkeypatch, "quick")
    finally:
        monkeypatch.undo()
        importlib.reload(budget)


def test_ci_runs_the_full_property_budget_and_the_slow_tests() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    readme_command = script.index("\n.venv/bin/python -m pytest\n")
    full = script.index('HYPOTHESIS_PROFILE=ci .venv/bin/python -m pytest -m "hypothesis and '
                        'not slow"')
    slow = script.index(".venv/bin/python -m pytest -m slow")
    assert readme_command < full < slow
    readme = (ROOT / "README.md").read_text()
    assert "```sh\npython3 -m venv .venv" in readme and "\n.venv/bin/python -m pytest\n" in readme


def test_pydots_deprecation_warnings_are_filtered(pytestconfig: pytest.Config) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "ignore::DeprecationWarning:pydot.dot_parser" in config["ini_options"][
        "filterwarnings"]
    assert "ignore::DeprecationWarning:pydot.dot_parser" in pytestconfig.getini("filterwarnings")
    # The filter matches where pydot's warnings come from: its parser module.
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pydot.dot_parser")
        warnings.warn_explicit("'setParseAction' deprecated", DeprecationWarning,
                               "dot_parser.py", 373, module="pydot.dot_parser")
    assert seen == []


def test_one_astrbot_venv_found_as_ci_finds_python312(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert env.ASTRBOT_VENV == ROOT / ".venv-astrbot"
    # A pyenv tree with a 3.12 in it, as on this machine: PYENV_ROOT/versions/3.12*/bin.
    fake = tmp_path / "pyenv" / "versions" / "3.12.7" / "bin" / "python3.12"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho True\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("PYTHON312", raising=False)
    monkeypatch.delenv("CONVO_BENCH_PY312", raising=False)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.12 on PATH
    assert env.find_python312() == str(fake)
    command = env.astrbot_venv_command()
    assert command.startswith(f"{fake} -m venv .venv-astrbot && .venv-astrbot/bin/pip install ")
    assert "-e '.[astrbot]' pytest pytest-asyncio hypothesis" in command
    # The same line .ci/run builds it with.
    assert ".venv-astrbot/bin/pip install -q -e '.[astrbot]' pytest pytest-asyncio hypothesis" \
        in (ROOT / ".ci" / "run").read_text()
    monkeypatch.setenv("PYTHON312", str(fake))
    assert env.find_python312() == str(fake)
    assert os.environ["PATH"] == str(tmp_path)
