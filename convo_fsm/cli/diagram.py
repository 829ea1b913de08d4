"""`convo-fsm diagram`: draw a spec's state diagram, or keep `diagrams/` fresh.

    convo-fsm diagram TARGET [--format mermaid|dot|svg] [-o FILE]
    convo-fsm diagram --all [--check] [--dir DIR] [--readme FILE]

TARGET is a game name from the registry `games.GAMES`, `module:attribute`
naming any `convo_fsm.Spec` (imported from the current directory) or a spec file
(convo_fsm.cli.targets). Without `--format`, the format follows the suffix of
`-o FILE` (.mmd, .dot, .svg; another suffix is refused), else Mermaid. SVG needs
Graphviz `dot`. A usage error or a bad TARGET exits 2; `--all --check` exits 1 when stale.

`--all` writes DIR/<game>.mmd, .dot and .svg for every game in the registry,
removes files there of games that no longer exist, and refreshes the Mermaid
block of a README that marks one (see `README_BEGIN`). `--all --check` writes
nothing: it exits 1 naming every file that differs from what the specs give
now. An SVG is judged by the digest of its DOT source that it carries, so a
different Graphviz build that lays the same graph out a little differently
does not make it stale (it is reported as a note).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from convo_fsm.cli import targets
from convo_fsm.cli.targets import TargetError
from convo_fsm.diagram import (
    EXTENSIONS,
    FORMATS,
    DiagramError,
    dot_digest,
    render,
    svg_digest,
    svg_from_dot,
)
from convo_fsm.spec import Spec

__all__ = ["README_BEGIN", "README_END", "TargetError", "register", "resolve", "run"]

README_BEGIN = re.compile(r"<!-- convo-fsm diagram: (?P<game>[^\s>]+) [^\n]*-->\n")
README_END = "<!-- end of convo-fsm diagram -->"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SUFFIX_FORMAT = {suffix: fmt for fmt, suffix in EXTENSIONS.items()}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagram", help="draw a spec's state diagram (Mermaid, DOT, SVG)",
        description="Draw the state diagram of a game or of any spec (module:attribute), "
                    "or regenerate/check the diagrams/ folder with --all.",
        epilog="examples:\n"
               "  convo-fsm diagram guess-number                 # Mermaid to stdout\n"
               "  convo-fsm diagram guess-number -o guess.svg    # format from the suffix "
               "(.mmd, .dot, .svg; SVG needs Graphviz `dot`)\n"
               "  convo-fsm diagram mymodule:SPEC --format dot   # a spec of yours, imported "
               "from the current directory\n"
               "  convo-fsm diagram --all --check                # exit 1 naming stale files\n"
               "exit status: 0 done, 1 stale (--check), 2 a bad TARGET, option or file.")
    parser.add_argument("target", nargs="?", metavar="TARGET",
                        help="a game name (see `convo-fsm play --list`), module:attribute "
                             "of a convo_fsm.Spec, or a spec file")
    parser.add_argument("--registry", metavar="MODULE:ATTR",
                        help="for a spec file: the mapping of names to the guards and actions "
                             "it names")
    parser.add_argument("--format", "-f", choices=FORMATS,
                        help="output format (default: from -o's suffix, else mermaid)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write to FILE, not stdout (its folder must exist); its suffix "
                             "picks the format: .mmd, .dot or .svg")
    parser.add_argument("--all", action="store_true",
                        help="render every game into --dir as .mmd, .dot and .svg")
    parser.add_argument("--check", action="store_true",
                        help="with --all: write nothing, exit 1 naming each stale file")
    parser.add_argument("--dir", default="diagrams", metavar="DIR",
                        help="the folder --all writes (default: diagrams)")
    parser.add_argument("--readme", default="README.md", metavar="FILE",
                        help="README whose marked Mermaid block --all refreshes "
                             "(default: README.md; skipped if it has no marker)")
    parser.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"convo-fsm diagram: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.all:
        if args.target is not None or args.output is not None or args.format is not None:
            return _error("--all takes no TARGET, -o or --format: it writes every format "
                          f"for every game into {args.dir}/")
        return run_all(Path(args.dir), Path(args.readme), check=args.check)
    if args.check:
        return _error("--check goes with --all")
    if args.target is None:
        return _error("name a TARGET (a game or module:attribute), or use --all")
    fmt = args.format
    if args.output is not None:
        output = Path(args.output)
        suffix = output.suffix.lower()
        known = ", ".join(sorted(_SUFFIX_FORMAT))
        if fmt is None:
            if suffix not in _SUFFIX_FORMAT:
                return _error(f"-o {args.output}: cannot tell the format from "
                              f"{suffix or 'no suffix'!r}: use {known} or --format")
            fmt = _SUFFIX_FORMAT[suffix]
        elif suffix in _SUFFIX_FORMAT and _SUFFIX_FORMAT[suffix] != fmt:
            return _error(f"-o {args.output}: the suffix says {_SUFFIX_FORMAT[suffix]}, "
                          f"--format says {fmt}")
        if not output.parent.is_dir():
            return _error(f"-o {args.output}: folder {str(output.parent)!r} does not exist")
    try:
        text = render(targets.resolve(args.target, args.registry).spec, fmt or "mermaid")
    except (TargetError, DiagramError) as exc:
        return _error(str(exc))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_bytes(text.encode("utf-8"))
    except OSError as exc:
        return _error(f"cannot write {args.output}: {exc.strerror or exc}")
    return 0


# -- targets -------------------------------------------------------------------------------------
def resolve(target: str) -> Spec:
    """The Spec a TARGET names (convo_fsm.cli.targets: a game, module:attribute, a file)."""
    return targets.resolve(target).spec


def _games() -> Any:
    return targets.games_registry()


# -- --all ---------------------------------------------------------------------------------------
def expected(directory: Path) -> Iterator[tuple[Path, str, str]]:
    """(path, format, text) of every generated file, game by game in registry order.
    SVG text is produced lazily by the caller (it needs `dot`): here it is the DOT source."""
    try:
        names = list(_games().GAMES)
    except TargetError as exc:  # no registry yet: no game, so no diagram may be there
        print(f"note: {exc}", file=sys.stderr)
        names = []
    for name in names:
        if not _SAFE_NAME.match(name):
            raise TargetError(f"game name {name!r} cannot be a file name in {directory}/")
        spec = resolve(name)
        dot = render(spec, "dot")
        yield directory / f"{name}.mmd", "mermaid", render(spec, "mermaid")
        yield directory / f"{name}.dot", "dot", dot
        yield directory / f"{name}.svg", "svg", dot


def run_all(directory: Path, readme: Path, *, check: bool) -> int:
    try:
        files = list(expected(directory))
        readme_text = _readme(readme)
    except (TargetError, DiagramError) as exc:
        return _error(str(exc))
    stale: list[str] = []
    wanted = {path for path, _, _ in files}
    orphans = sorted(p for p in directory.glob("*") if p.suffix in _SUFFIX_FORMAT
                     and p not in wanted) if directory.is_dir() else []
    have_dot = shutil.which("dot") is not None
    for path, fmt, text in files:
        old = _read(path)
        if fmt == "svg":
            if check:
                if old is None or svg_digest(old) != dot_digest(text):
                    stale.append(f"{path} (made from another DOT source)" if old else
                                 f"{path} (missing)")
                elif have_dot and _svg_or_none(text) != old:
                    print(f"note: {path} is up to date with its spec, but this machine's "
                          "Graphviz lays it out differently", file=sys.stderr)
                continue
            try:
                text = svg_from_dot(text)
            except DiagramError as exc:
                return _error(f"{path}: {exc}")
        if old == text:
            continue
        if check:
            stale.append(f"{path} ({'missing' if old is None else 'differs'})")
        else:
            _write(path, text)
            print(f"wrote {path}", file=sys.stderr)
    for path in orphans:
        if check:
            stale.append(f"{path} (no such game in games.GAMES)")
        else:
            path.unlink()
            print(f"removed {path} (no such game)", file=sys.stderr)
    if readme_text is not None:
        new = readme_text[1]
        if new != readme_text[0]:
            if check:
                stale.append(f"{readme} (its Mermaid diagram block)")
            else:
                _write(readme, new)
                print(f"wrote {readme} (its Mermaid diagram block)", file=sys.stderr)
    if stale:
        print("stale diagrams (regenerate with `convo-fsm diagram --all`):", file=sys.stderr)
        for line in stale:
            print(f"  {line}", file=sys.stderr)
        return 1
    if check:
        print(f"diagrams up to date: {len(files)} files in {directory}/", file=sys.stderr)
    return 0


def _svg_or_none(dot: str) -> str | None:
    try:
        return svg_from_dot(dot)
    except DiagramError:
        return None


def _readme(path: Path) -> tuple[str, str] | None:
    """(current text, text with its marked Mermaid blocks regenerated), or None if `path`
    does not exist. A block is the lines between a `README_BEGIN` marker and `README_END`."""
    text = _read(path)
    if text is None:
        return None
    out: list[str] = []
    pos = 0
    for begin in README_BEGIN.finditer(text):
        if begin.start() < pos:
            continue
        end = text.find(README_END, begin.end())
        if end < 0:
            raise DiagramError(f"{path}: the diagram block of {begin['game']!r} has no "
                               f"closing {README_END!r}")
        diagram = render(resolve(begin["game"]), "mermaid")
        out += [text[pos:begin.end()], f"```mermaid\n{diagram}```\n"]
        pos = end
    out.append(text[pos:])
    return text, "".join(out)


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
