"""`convo-fsm bench`: the benchmark comparison (`python -m benchmarks` in a checkout).

The benchmarks live in the repository, not in the installed package: this command finds
the checkout `convo_fsm` was installed from (editable install) and runs them there, passing
its options through.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import convo_fsm

__all__ = ["checkout", "register", "run"]


def checkout() -> Path | None:
    """The repository root holding `benchmarks/`, if convo_fsm runs from a checkout."""
    root = Path(convo_fsm.__file__).resolve().parent.parent
    return root if (root / "benchmarks" / "run.py").is_file() else None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bench", help="run the benchmarks against AstrBot, PTB, transitions and a dict FSM",
        description="Run benchmarks/ (python -m benchmarks) from the checkout; every option "
                    "after `bench` is passed through (see `convo-fsm bench -- --help`).")
    p.add_argument("--quick", action="store_true", help="small sizes: under two minutes")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options for python -m benchmarks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = checkout()
    if root is None:
        print("convo-fsm bench: the benchmarks live in the source checkout, not in the "
              "installed package; clone the repository and `pip install -e .` it",
              file=sys.stderr)
        return 2
    rest = [a for a in args.rest if a != "--"]
    argv = [sys.executable, "-m", "benchmarks", *(["--quick"] if args.quick else []), *rest]
    return subprocess.run(argv, cwd=root, check=False).returncode
