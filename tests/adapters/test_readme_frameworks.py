"""README's framework section shows the example files verbatim (they are tested in
test_examples_signup.py and tests/nonebot_real), and names modules that exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## aiogram, python-telegram-bot and NoneBot2")
    return readme[start:readme.index("\n## ", start + 1)]


@pytest.mark.parametrize("name", ["signup", "aiogram_signup", "ptb_signup", "nonebot_signup"])
def test_readme_shows_the_example_file_verbatim(name: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", _section(), re.S)
    assert (ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8") in blocks


def test_the_modules_and_extras_it_names_exist() -> None:
    section = _section()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for module, extra in (("aiogram", "aiogram"), ("ptb", "ptb"), ("nonebot", "nonebot")):
        assert f"`convo_fsm.adapters.{module}`" in section
        assert f"'convo-fsm[{extra}]'" in section and f"\n{extra} = [" in pyproject
        assert importlib.util.find_spec(f"convo_fsm.adapters.{module}") is not None
