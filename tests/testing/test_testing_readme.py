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
