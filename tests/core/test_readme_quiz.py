"""README's three-state example is examples/quiz.py, and its printed output is what it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## A conversation in one table")
    return readme[start:readme.index("\n## ", start + 1)]


def test_readme_shows_the_example_file_verbatim() -> None:
    code = re.search(r"```python\n(.*?)```", _section(), re.S)
    assert code is not None
    assert code.group(1) == (ROOT / "examples" / "quiz.py").read_text(encoding="utf-8")


def test_readme_output_is_what_the_example_prints() -> None:
    shown = re.search(r"```text\n(.*?)```", _section(), re.S)
    assert shown is not None
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "quiz.py")],
                         capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout == shown.group(1)
