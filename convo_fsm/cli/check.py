"""`convo-fsm check FILE`: check a spec file (YAML, TOML or JSON) as `load_spec` reads it.

    convo-fsm check quiz.yaml                        # schema, table, templates
    convo-fsm check quiz.yaml --registry app:NAMES   # and resolve its names there

Without `--registry`, the guards and actions a file names are not resolved (the file is
checked with a stand-in for each) and are listed; with it, an unknown name is an error.
Exit status: 0 the file is valid, 1 it is not (one line naming file, line and field),
2 a usage error (no such file, a registry that cannot be imported).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["Placeholders", "register", "run"]


class Placeholders(Mapping[str, Callable[..., Any]]):
    """A registry that has every name (a stand-in that does nothing), remembering which were
    asked for: checks a file's structure without the program's callables."""

    stands_in = True  # (a called spec is stood in for too: see spec_file)

    def __init__(self) -> None:
        self.asked: dict[str, None] = {}

    def __getitem__(self, name: str) -> Callable[..., Any]:
        self.asked[name] = None

        def stand_in(*args: Any) -> Any:
            return None

        stand_in.__name__ = name
        return stand_in

    def __iter__(self) -> Iterator[str]:
        return iter(self.asked)

    def __len__(self) -> int:
        return len(self.asked)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "check", help="check a spec file (YAML, TOML, JSON)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="examples:\n"
               "  convo-fsm check quiz.yaml\n"
               "  convo-fsm check quiz.yaml --registry app:NAMES\n"
               "  convo-fsm play quiz.yaml --registry app:NAMES   # then play it")
    parser.add_argument("file", metavar="FILE", help="a .yaml, .yml, .toml or .json spec file")
    parser.add_argument("--registry", metavar="MODULE:ATTR",
                        help="a mapping of names to the guards and actions the file names")
    parser.set_defaults(func=run)


def _registry(target: str) -> Mapping[str, Callable[..., Any]]:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise LookupError(f"--registry {target!r}: expected MODULE:ATTR")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            value = getattr(value, part)
    except Exception as exc:
        raise LookupError(f"--registry {target!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(value, Mapping):
        raise LookupError(f"--registry {target!r} is a {type(value).__name__}, not a mapping")
    return value


def run(args: argparse.Namespace) -> int:
    from convo_fsm.spec import SpecError
    from convo_fsm.spec_file import load_spec

    if not os.path.isfile(args.file):
        print(f"convo-fsm check: error: no such file {args.file!r}", file=sys.stderr)
        return 2
    try:
        registry = Placeholders() if args.registry is None else _registry(args.registry)
    except LookupError as exc:
        print(f"convo-fsm check: error: {exc}", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args.file, registry)
    except SpecError as exc:
        print(f"convo-fsm check: {exc}", file=sys.stderr)
        return 1
    transitions = sum(len(s.on) for s in spec.states) + len(spec.any_state)
    print(f"{args.file}: ok: spec {spec.name!r}, {len(spec.states)} states, "
          f"{transitions} transitions")
    if isinstance(registry, Placeholders) and registry.asked:
        print(f"  names not resolved (give --registry MODULE:ATTR): {', '.join(registry.asked)}")
    return 0
