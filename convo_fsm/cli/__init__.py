"""The `convo-fsm` command. Each subcommand lives in its own module here and
exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`.

Exit status, for every subcommand: 0 done, 2 a usage error (one line on stderr naming the
problem, never a traceback); `diagram --all --check` and `replay` use 1 for "stale" and
"diverged"."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

import convo_fsm

__all__ = ["Parser", "main"]

# Subcommand modules, in the order `--help` lists them.
SUBCOMMANDS = ("play", "diagram", "replay", "bench", "sessions", "serve", "check")
# Subcommands that pass the options they do not know on to another program.
PASS_THROUGH = frozenset({"bench"})


class Parser(argparse.ArgumentParser):
    """A usage error is one line, `convo-fsm CMD: error: ...`, and exit status 2 (argparse
    also prints the whole usage first); `--help` keeps the layout of its examples."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="convo-fsm", description="Chat conversations as explicit state machines.",
        epilog="examples:\n"
               "  convo-fsm play --list\n"
               "  convo-fsm play idiom-chain\n"
               "  convo-fsm diagram guess-number -o guess.svg\n"
               "  convo-fsm COMMAND --help      (every option of one command, with examples)")
    parser.add_argument("--version", action="version", version=f"convo-fsm {convo_fsm.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    if extra and args.command not in PASS_THROUGH:
        prog = f"convo-fsm {args.command}" if args.command else "convo-fsm"
        print(f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see {prog} --help)",
              file=sys.stderr)
        return 2
    if args.command in PASS_THROUGH:
        args.rest = [*getattr(args, "rest", []), *extra]
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = func(args)
    return code
