"""The `convo-fsm` command. Each subcommand lives in its own module here and
exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import convo_fsm

__all__ = ["main"]

# Subcommand modules, in the order `--help` lists them.
SUBCOMMANDS = ("play", "diagram", "replay", "bench", "sessions", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convo-fsm", description="Chat conversations as explicit state machines.")
    parser.add_argument("--version", action="version", version=f"convo-fsm {convo_fsm.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"convo_fsm.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"convo_fsm.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = func(args)
    return code
