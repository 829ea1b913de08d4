"""README's "Testing your conversation" example is examples/test_quiz.py, and it passes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Testing your conversation")
    return readme[start:readme.index("\n## ", start + 1)]


def test_readme_shows_the_example_test_verbatim() -> None:
    code = re.search(r"```python\n(.*?)```", _section(), re.S)
    assert code is not None
    assert code.group(1) == (ROOT / "examples" / "test_quiz.py").read_text(encoding="utf-8")


def test_the_example_test_runs_as_written_and_passes() -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "examples/test_quiz.py"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_the_example_test_runs_in_a_users_own_folder(tmp_path: Path) -> None:
    # Not this repository's pytest config (asyncio_mode = "auto"): a folder of the user's
    # own with quiz.py and test_quiz.py, and an empty pytest.ini so nothing above is read.
    for name in ("quiz.py", "test_quiz.py"):
        (tmp_path / name).write_text((ROOT / "examples" / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    # nonebug (this venv's NoneBot test plugin, not the user's) is left out: it needs a
    # NoneBot driver configured for any async test.
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "-p", "no:nonebug", "test_quiz.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "asyncio_mode" not in (tmp_path / "pytest.ini").read_text()
