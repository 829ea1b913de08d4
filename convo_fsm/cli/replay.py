"""`convo-fsm replay FILE TARGET`: re-run a recorded transcript and report the first divergence.

TARGET is a game name from the `games` registry (`games.GAMES`) or `module:attribute` naming
a `convo_fsm.Spec`. Exit status: 0 the replay matches every line, 1 it diverges (the line,
what was expected, what happened), 2 the file or target is bad.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from convo_fsm.spec import Spec
from convo_fsm.testing.transcript import Transcript, TranscriptError, describe, replay

__all__ = ["TargetError", "register", "resolve_target", "run"]


class TargetError(LookupError):
    """TARGET is neither a known game nor `module:attribute` naming a Spec."""


def resolve_target(target: str) -> Spec:
    """A game name from `games.GAMES`, or `module:attribute`, as its Spec."""
    try:
        import games
    except ImportError:
        games = None  # type: ignore[assignment]
    if games is not None and target in games.GAMES:
        return games.load(target)
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        known = ", ".join(sorted(games.GAMES)) if games is not None else "none"
        raise TargetError(f"unknown target {target!r}: give a game name (known: {known}) "
                          "or module:attribute naming a Spec")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetError(f"cannot import {module_name!r} for target {target!r}: {exc}") from exc
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(f"{module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(value, Spec):
        raise TargetError(f"{target} is a {type(value).__name__}, not a convo_fsm.Spec")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="re-run a recorded transcript against a spec",
        description="Re-run the inputs of a transcript (JSON lines recorded by "
                    "convo_fsm.testing.Transcript) on a virtual clock and compare every line.")
    parser.add_argument("file", help="the transcript (JSON lines)")
    parser.add_argument("target", help="a game name, or module:attribute naming a Spec")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        spec = resolve_target(args.target)
        transcript = Transcript.load(args.file)
        result = replay(transcript, spec)
    except (TargetError, TranscriptError) as exc:
        print(f"convo-fsm replay: {exc}", file=sys.stderr)
        return 2
    if result.divergence is None:
        print(f"ok: {result.replayed} lines of {args.file} replayed against {spec.name!r}")
        return 0
    d = result.divergence
    where = "after the last line" if d.line is None else f"line {d.line}"
    print(f"diverged at {where} of {args.file} ({result.replayed} lines matched before)")
    print(f"  expected: {describe(d.expected)}")
    print(f"  actual:   {describe(d.actual)}")
    return 1
