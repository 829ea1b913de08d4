"""The committed diagrams/ files are what every game's spec draws now (the golden files;
`convo-fsm diagram --all` regenerates them)."""

from __future__ import annotations

from pathlib import Path

import pytest

import games
from convo_fsm.cli.diagram import run_all
from convo_fsm.diagram import dot_digest, render, svg_digest

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = ROOT / "diagrams"
REGENERATE = "stale: regenerate with `convo-fsm diagram --all` and commit diagrams/"


@pytest.mark.parametrize("game", list(getattr(games, "GAMES", {})))
def test_golden_files_match_the_game(game: str) -> None:
    spec = games.load(game)
    for fmt, suffix in (("mermaid", ".mmd"), ("dot", ".dot")):
        path = DIAGRAMS / f"{game}{suffix}"
        assert path.exists(), f"{path} is missing: {REGENERATE}"
        assert path.read_bytes().decode() == render(spec, fmt), f"{path} is {REGENERATE}"
    svg = (DIAGRAMS / f"{game}.svg").read_text()
    assert svg_digest(svg) == dot_digest(render(spec, "dot")), f"{game}.svg is {REGENERATE}"


def test_no_diagram_without_a_game() -> None:
    files = DIAGRAMS.iterdir() if DIAGRAMS.is_dir() else iter(())
    stems = {p.stem for p in files if p.suffix in (".mmd", ".dot", ".svg")}
    assert stems == set(getattr(games, "GAMES", {}))


def test_check_passes_on_the_committed_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert run_all(Path("diagrams"), Path("README.md"), check=True) == 0
