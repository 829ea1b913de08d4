"""`convo-fsm replay FILE TARGET`: re-run a recorded transcript and report the first divergence.

TARGET is a game name, `module:attribute` naming a `convo_fsm.Spec` (imported from the
current directory) or a spec file (convo_fsm.cli.targets). `convo-fsm play TARGET --record
FILE` records one. Exit status: 0 the replay matches every line, 1 it diverges (the line,
what was expected, what happened), 2 the file or target is bad (one line saying why).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from convo_fsm.cli.targets import TargetError, resolve
from convo_fsm.spec import Spec
from convo_fsm.testing.transcript import Transcript, TranscriptError, describe, replay

__all__ = ["TargetError", "register", "resolve_target", "run"]


def resolve_target(target: str, registry: str | None = None) -> Spec:
    """A game name, `module:attribute` or a spec file, as its Spec."""
    return resolve(target, registry).spec


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="re-run a recorded transcript against a spec",
        description="Re-run the inputs of a transcript (JSON lines recorded by "
                    "`convo-fsm play --record` or convo_fsm.testing.Transcript) on a virtual "
                    "clock and compare every line.",
        epilog="examples:\n"
               "  convo-fsm play guess-number --virtual --record game.jsonl\n"
               "  convo-fsm replay game.jsonl guess-number\n"
               "  convo-fsm replay tests/data/quiz.jsonl mymodule:SPEC\n"
               "exit status: 0 it replays, 1 it diverges (where, expected, actual), "
               "2 a bad file or TARGET.")
    parser.add_argument("file", help="the transcript (JSON lines)")
    parser.add_argument("target", metavar="TARGET",
                        help="a game name, module:attribute naming a Spec, or a spec file")
    parser.add_argument("--registry", metavar="MODULE:ATTR",
                        help="for a spec file: the mapping of names to the guards and actions "
                             "it names")
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"convo-fsm replay: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        spec = resolve_target(args.target, args.registry)
        transcript = Transcript.load(args.file)
        if not len(transcript):
            return _fail(f"{args.file} holds no transcript lines: nothing to replay")
        result = replay(transcript, spec)
    except (TargetError, TranscriptError) as exc:
        return _fail(str(exc))
    if result.divergence is None:
        print(f"ok: {result.replayed} lines of {args.file} replayed against {spec.name!r}")
        return 0
    d = result.divergence
    where = "after the last line" if d.line is None else f"line {d.line}"
    print(f"diverged at {where} of {args.file} ({result.replayed} lines matched before)")
    print(f"  expected: {describe(d.expected)}")
    print(f"  actual:   {describe(d.actual)}")
    return 1
