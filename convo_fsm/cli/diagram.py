"""`convo-fsm diagram`: draw a spec's state diagram, or keep `diagrams/` fresh.

    convo-fsm diagram TARGET [--format mermaid|dot|svg] [-o FILE]
    convo-fsm diagram --all [--check] [--dir DIR] [--readme FILE]

TARGET is a game name from the registry `games.GAMES` or `module:attribute`
naming any `convo_fsm.Spec`. Without `--format`, the format follows the
suffix of `-o FILE` (.mmd, .dot, .svg), else Mermaid. SVG needs Graphviz `dot`.

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
import importlib
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class TargetError(LookupError):
    """A TARGET that names no spec: unknown game, bad module:attribute, not a Spec."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagram", help="draw a spec's state diagram (Mermaid, DOT, SVG)",
        description="Draw the state diagram of a game or of any spec (module:attribute), "
                    "or regenerate/check the diagrams/ folder with --all.")
    parser.add_argument("target", nargs="?", metavar="TARGET",
                        help="a game name (see `convo-fsm play --list`) or module:attribute "
                             "of a convo_fsm.Spec")
    parser.add_argument("--format", "-f", choices=FORMATS,
                        help="output format (default: from -o's suffix, else mermaid)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
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
    return 1


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
    if fmt is None:
        suffix = Path(args.output).suffix if args.output else ""
        fmt = _SUFFIX_FORMAT.get(suffix, "mermaid")
    try:
        text = render(resolve(args.target), fmt)
    except (TargetError, DiagramError) as exc:
        return _error(str(exc))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        _write(Path(args.output), text)
    except OSError as exc:
        return _error(f"cannot write {args.output}: {exc}")
    return 0


# -- targets -------------------------------------------------------------------------------------
def resolve(target: str) -> Spec:
    """The Spec a TARGET names: `module:attribute` (attribute may be dotted) or a game name."""
    if ":" in target:
        module_name, _, attribute = target.partition(":")
        if not module_name or not attribute:
            raise TargetError(f"{target!r}: expected module:attribute, e.g. games.quiz:SPEC")
        try:
            value: object = importlib.import_module(module_name)
        except Exception as exc:  # a module that fails at import: SpecError, ImportError, ...
            raise TargetError(f"{target!r}: cannot import module {module_name!r}: {exc}") from exc
        for part in attribute.split("."):
            try:
                value = getattr(value, part)
            except AttributeError:
                raise TargetError(f"{target!r}: {module_name!r} has no attribute "
                                  f"{attribute!r}") from None
        if not isinstance(value, Spec):
            raise TargetError(f"{target!r} is a {type(value).__name__}, not a convo_fsm.Spec")
        return value
    registry = _games()
    if target not in registry.GAMES:
        known = ", ".join(sorted(registry.GAMES)) or "none"
        raise TargetError(f"unknown game {target!r} (known games: {known}); for any other "
                          "spec give module:attribute")
    load = getattr(registry, "load", None)
    if load is None:  # a bare registry: its entries are module:attribute
        return resolve(registry.GAMES[target])
    try:
        spec = load(target)
    except Exception as exc:  # a game module that fails at import: SpecError, ImportError, ...
        raise TargetError(f"game {target!r} cannot be loaded: {exc}") from exc
    if not isinstance(spec, Spec):
        raise TargetError(f"game {target!r} gives a {type(spec).__name__}, not a convo_fsm.Spec")
    return spec


def _games() -> Any:
    try:
        registry = importlib.import_module("games")
    except Exception as exc:
        raise TargetError(f"no game registry: cannot import the games package ({exc})") from exc
    if not isinstance(getattr(registry, "GAMES", None), dict):
        raise TargetError("no game registry: the games package has no GAMES dict")
    return registry


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
