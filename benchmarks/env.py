"""The interpreters the benchmarks run on, and the machine they ran on.

AstrBot 4.29.3 needs Python >= 3.12, so its scenarios run in a separate venv: the
repository's `.venv-astrbot`, the same one `.ci/run` builds and
tests/adapters/test_real_astrbot.py uses. `astrbot_python` finds it, or builds it with
`astrbot_venv_command()` (a Python 3.12 found as `.ci/run` finds one: $PYTHON312, pyenv's
3.12, python3.12 on PATH; about 3-4 minutes, ~300 packages). `--astrbot-python` names
another; `--own-astrbot-venv` uses `benchmarks/.work/venv-astrbot` instead.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ASTRBOT_VENV", "ASTRBOT_VERSION", "ROOT", "WORK", "astrbot_python",
           "astrbot_venv_command", "child_env", "find_python312", "machine"]

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
ASTRBOT_VERSION = "4.29.3"
ASTRBOT_VENV = ROOT / ".venv-astrbot"
# What the AstrBot venv holds: the project with its astrbot extra, and what
# tests/astrbot_real needs (the same line as .ci/run's).
ASTRBOT_VENV_PACKAGES = ("-e", ".[astrbot]", "pytest", "pytest-asyncio", "hypothesis")
_PROBE = ("import importlib.metadata as m, sys; "
          "print(m.version('astrbot'), sys.version_info >= (3, 12))")


def child_env() -> dict[str, str]:
    """The environment of a scenario process. AstrBot writes `data/` (config, temp files)
    under ASTRBOT_ROOT, by default the working directory: keep it under benchmarks/.work."""
    root = WORK / "astrbot-root"
    root.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "ASTRBOT_ROOT": str(root)}


def _has_astrbot(python: Path) -> bool:
    if not python.exists():
        return False
    try:
        out = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True,
                             timeout=60, check=False).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out == [ASTRBOT_VERSION, "True"]


def find_python312() -> str | None:
    """A working Python 3.12+, looked for as `.ci/run` does: $PYTHON312 (or
    $CONVO_BENCH_PY312), pyenv's 3.12 under $PYENV_ROOT (default ~/.pyenv), python3.12 on
    PATH (a pyenv shim on PATH may not run, so each candidate is tried)."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [os.environ.get("PYTHON312", ""), os.environ.get("CONVO_BENCH_PY312", ""),
                  *sorted(glob.glob(os.path.join(pyenv, "versions/3.12*/bin/python3.12")),
                          reverse=True),
                  shutil.which("python3.12") or ""]
    for c in candidates:
        if not c:
            continue
        try:
            ok = subprocess.run([c, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                                capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ok.stdout.strip() == "True":
            return c
    return None


def astrbot_venv_command(python312: str | None = None) -> str:
    """The shell command that builds `.venv-astrbot` (run from the repository root)."""
    py = python312 or find_python312() or "python3.12"
    return (f"{py} -m venv .venv-astrbot && .venv-astrbot/bin/pip install "
            + " ".join(f"'{p}'" if "[" in p else p for p in ASTRBOT_VENV_PACKAGES))


def astrbot_python(explicit: str | None = None, *, create: bool = True, reuse_repo: bool = True,
                   log: Path | None = None) -> Path | None:
    """The python of a venv holding astrbot 4.29.3 (building `.venv-astrbot` if needed), or
    None. `reuse_repo=False` uses (and builds) `benchmarks/.work/venv-astrbot` instead."""
    if explicit:
        path = Path(explicit)
        if not _has_astrbot(path):
            raise SystemExit(f"--astrbot-python {explicit}: no astrbot {ASTRBOT_VERSION} there")
        return path
    ours = (ASTRBOT_VENV if reuse_repo else WORK / "venv-astrbot") / "bin" / "python"
    if _has_astrbot(ours):
        return ours
    if not create:
        return None
    py312 = find_python312()
    if py312 is None:
        print("bench: no Python 3.12 found (set PYTHON312): AstrBot skipped",
              file=sys.stderr)
        return None
    venv = ours.parent.parent
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"bench: creating {venv} with {py312} and astrbot=={ASTRBOT_VERSION} "
          f"(3-4 minutes, once): {astrbot_venv_command(py312)}", file=sys.stderr)
    out = open(log or WORK / "venv-astrbot.log", "w")  # noqa: SIM115 - closed below
    try:
        subprocess.run([py312, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out)
        subprocess.run([str(ours), "-m", "pip", "install", "-q", *ASTRBOT_VENV_PACKAGES],
                       check=True, stdout=out, stderr=out, cwd=ROOT)
    except subprocess.CalledProcessError as exc:
        print(f"bench: building the AstrBot venv failed ({exc}); see {out.name}",
              file=sys.stderr)
        return None
    finally:
        out.close()
    return ours if _has_astrbot(ours) else None


def _version(python: str | Path, module: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                             timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def machine(astrbot: Path | None) -> dict[str, object]:
    """CPU model and count, OS, interpreters and peer versions, for RESULTS.md."""
    model = platform.processor() or "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    info: dict[str, object] = {
        "cpu": model, "cores": os.cpu_count(), "os": platform.platform(),
        "python": platform.python_version(), "load_before": [round(x, 2) for x in load],
        "transitions": _version(sys.executable, "transitions"),
        "attrs": _version(sys.executable, "attrs"),
    }
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "convo_fsm"], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.strip()
        info["commit"] = head + (" (convo_fsm/ has uncommitted changes)" if dirty else "")
    except OSError:
        info["commit"] = "?"
    if astrbot is not None:
        info["astrbot_python"] = subprocess.run(
            [str(astrbot), "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=False).stdout.strip()
        info["astrbot"] = _version(astrbot, "astrbot")
        info["python-telegram-bot"] = _version(astrbot, "python-telegram-bot")
    return info
