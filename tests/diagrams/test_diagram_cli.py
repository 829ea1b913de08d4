"""`convo-fsm diagram`: targets, formats, -o, the missing-`dot` error, --all and --check."""

from __future__ import annotations

import shutil
from pathlib import Path

import diagram_specs
import pytest

import games
from convo_fsm.cli import main
from convo_fsm.diagram import render

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="needs Graphviz `dot`: apt-get install graphviz")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A games registry of two test specs (the real games have golden files of their own)."""
    reg = {"quiz-a": "diagram_specs:QUIZ", "echo": "diagram_specs:ECHO"}
    monkeypatch.setattr(games, "GAMES", reg, raising=False)
    return reg


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH on which there is no Graphviz `dot`."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


def test_module_attribute_target_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "diagram_specs:QUIZ"]) == 0
    assert capsys.readouterr().out == render(diagram_specs.QUIZ, "mermaid")


def test_game_target_and_format_from_output_suffix(registry: dict[str, str],
                                                   tmp_path: Path) -> None:
    out = tmp_path / "q.dot"
    assert main(["diagram", "quiz-a", "-o", str(out)]) == 0
    assert out.read_text() == render(diagram_specs.QUIZ, "dot")
    assert main(["diagram", "quiz-a", "-o", str(out), "--format", "dot"]) == 0
    assert out.read_text() == render(diagram_specs.QUIZ, "dot")


@pytest.mark.parametrize("target, message", [
    ("nope", "unknown game 'nope' (known games: echo, quiz-a); for another spec give "
             "module:attribute (e.g. mymodule:SPEC) or a spec file"),
    ("diagram_specs:NOT_A_SPEC", "'diagram_specs:NOT_A_SPEC' is a dict, not a convo_fsm.Spec"),
    ("diagram_specs:MISSING", "'diagram_specs' has no attribute 'MISSING'"),
    ("no_such_module_x:SPEC", "cannot import module 'no_such_module_x'"),
    (":SPEC", "expected module:attribute"),
])
def test_bad_targets_name_the_problem(registry: dict[str, str], target: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", target]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("convo-fsm diagram: error: ")


def test_svg_without_dot_says_what_to_install(no_dot: None, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q.svg"
    assert main(["diagram", "diagram_specs:QUIZ", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs Graphviz's `dot` program, which is not on PATH" in err
    assert "apt-get install graphviz" in err and "--format mermaid" in err
    assert not out.exists()
    # Mermaid and DOT need nothing installed.
    assert main(["diagram", "diagram_specs:QUIZ", "--format", "dot"]) == 0


@needs_dot
def test_svg_is_stable_and_carries_no_version(capsys: pytest.CaptureFixture[str]) -> None:
    first = render(diagram_specs.QUIZ, "svg")
    assert first == render(diagram_specs.QUIZ, "svg")
    assert "graphviz version" not in first and "<svg" in first
    # start, from asking: done, its loop, its timeout; from reminded: done, timeout; exit
    assert first.count('<g id="edge') == 7


def _all(tmp_path: Path, *extra: str) -> int:
    return main(["diagram", "--all", "--dir", str(tmp_path / "diagrams"),
                 "--readme", str(tmp_path / "README.md"), *extra])


@needs_dot
def test_all_writes_every_game_and_check_names_stale_files(
        registry: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "diagrams"
    assert _all(tmp_path, "--check") == 1
    assert "diagrams/quiz-a.mmd (missing)" in capsys.readouterr().err
    assert _all(tmp_path) == 0
    assert sorted(p.name for p in d.iterdir()) == [
        "echo.dot", "echo.mmd", "echo.svg", "quiz-a.dot", "quiz-a.mmd", "quiz-a.svg"]
    assert (d / "quiz-a.mmd").read_text() == render(diagram_specs.QUIZ, "mermaid")
    assert (d / "echo.svg").read_text() == render(diagram_specs.ECHO, "svg")
    capsys.readouterr()
    assert _all(tmp_path, "--check") == 0

    # A hand edit, an orphan (a game that left the registry), a new game.
    (d / "quiz-a.dot").write_text((d / "quiz-a.dot").read_text().replace("30s", "31s"))
    (d / "gone.mmd").write_text("flowchart TB\n")
    registry["echo-2"] = "diagram_specs:ECHO"
    assert _all(tmp_path, "--check") == 1
    err = capsys.readouterr().err
    assert "quiz-a.dot (differs)" in err and "gone.mmd (no such game" in err
    assert "echo-2.svg (missing)" in err and "quiz-a.mmd" not in err
    assert _all(tmp_path) == 0
    assert not (d / "gone.mmd").exists()
    assert _all(tmp_path, "--check") == 0


@needs_dot
def test_svg_staleness_follows_its_dot_source_even_without_dot(
        registry: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _all(tmp_path) == 0
    svg = tmp_path / "diagrams" / "echo.svg"
    # Another Graphviz build may lay the same DOT out differently: a note, not stale.
    relaid = svg.read_text().replace('font-size="10.00"', 'font-size="10.50"')
    assert relaid != svg.read_text()
    svg.write_text(relaid)
    capsys.readouterr()
    assert _all(tmp_path, "--check") == 0
    assert "echo.svg is up to date with its spec" in capsys.readouterr().err
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert _all(tmp_path, "--check") == 0  # judged by its digest: no `dot` needed
    registry["echo"] = "diagram_specs:QUIZ"  # what the game draws changes
    assert _all(tmp_path, "--check") == 1
    err = capsys.readouterr().err
    assert "echo.svg (made from another DOT source)" in err and "echo.dot (differs)" in err
    assert _all(tmp_path) == 2  # cannot write SVG without dot: an error, not "stale"
    assert "not on PATH" in capsys.readouterr().err


@needs_dot
def test_all_refreshes_and_checks_the_readme_block(
        registry: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- convo-fsm diagram: echo (generated) -->\nold\n"
                      "<!-- end of convo-fsm diagram -->\n\nAfter.\n")
    assert _all(tmp_path) == 0
    text = readme.read_text()
    assert text == ("# Title\n\n<!-- convo-fsm diagram: echo (generated) -->\n```mermaid\n"
                    + render(diagram_specs.ECHO, "mermaid")
                    + "```\n<!-- end of convo-fsm diagram -->\n\nAfter.\n")
    assert _all(tmp_path, "--check") == 0
    readme.write_text(text.replace("cli-echo", "cli-echo-edited"))
    capsys.readouterr()
    assert _all(tmp_path, "--check") == 1
    assert "README.md (its Mermaid diagram block)" in capsys.readouterr().err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram"]) == 2
    assert main(["diagram", "--check"]) == 2
    assert main(["diagram", "--all", "x"]) == 2
    err = capsys.readouterr().err
    assert "name a TARGET" in err and "--check goes with --all" in err
    assert "--all takes no TARGET" in err


def test_output_suffix_picks_the_format_or_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "x.png"
    assert main(["diagram", "diagram_specs:QUIZ", "-o", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot tell the format from '.png'" in err
    assert ".dot, .mmd, .svg" in err and not png.exists()
    assert main(["diagram", "diagram_specs:QUIZ", "-o", str(tmp_path / "x.dot"),
                 "--format", "mermaid"]) == 2
    assert "the suffix says dot, --format says mermaid" in capsys.readouterr().err
    mmd = tmp_path / "x.mmd"
    assert main(["diagram", "diagram_specs:QUIZ", "-o", str(mmd)]) == 0
    assert mmd.read_text() == render(diagram_specs.QUIZ, "mermaid")
    assert main(["diagram", "diagram_specs:QUIZ", "-o", str(tmp_path / "x"),
                 "--format", "dot"]) == 0  # no suffix: --format says it


def test_output_into_a_missing_folder_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nonexistent" / "x.mmd"
    assert main(["diagram", "diagram_specs:QUIZ", "-o", str(target)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not target.parent.exists()


def test_a_module_of_the_current_directory_is_a_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    (tmp_path / "mine_survey.py").write_text(
        "from convo_fsm import STOP, On, Spec, State\n"
        "survey = Spec(name='survey', initial='ask', states=[State('ask', on=[On('x', STOP)])])\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "mine_survey", raising=False)
    assert main(["diagram", "mine_survey:survey"]) == 0
    assert "spec 'survey'" in capsys.readouterr().out
    monkeypatch.delitem(sys.modules, "mine_survey", raising=False)
    assert main(["diagram", "mine_surve:survey"]) == 2
    err = capsys.readouterr().err
    assert f"no such module here ({tmp_path})" in err and "Traceback" not in err
