"""README.md shows one game's current Mermaid diagram (generated, never typed) and links
its SVG."""

from __future__ import annotations

import re
from pathlib import Path

import games
from convo_fsm.cli.diagram import README_BEGIN, README_END
from convo_fsm.diagram import render

ROOT = Path(__file__).resolve().parents[2]


def test_readme_shows_a_current_game_diagram_and_links_its_svg() -> None:
    readme = (ROOT / "README.md").read_text()
    begin = README_BEGIN.search(readme)
    assert begin is not None, "README.md has no generated diagram block"
    game = begin["game"]
    block = readme[begin.end():readme.index(README_END, begin.end())]
    assert block == f"```mermaid\n{render(games.load(game), 'mermaid')}```\n", (
        "README's diagram is stale: run `convo-fsm diagram --all`")
    assert re.search(rf"\]\(diagrams/{re.escape(game)}\.svg\)", readme)
    assert (ROOT / "diagrams" / f"{game}.svg").is_file()
