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
    # Options for `python -m benchmarks` arrive in `args.rest` (convo_fsm.cli.PASS_THROUGH).
    p = subparsers.add_parser(
        "bench", help="run the benchmarks against AstrBot, PTB, transitions and a dict FSM",
        description="Run benchmarks/ (python -m benchmarks) from the checkout; every option "
                    "this command does not know is passed through to it.",
        epilog="examples:\n"
               "  convo-fsm bench --quick                 # about two minutes\n"
               "  convo-fsm bench --list                  # the jobs, without running them\n"
               "  convo-fsm bench --quick --only deliver  # one workload\n"
               "  convo-fsm bench -- --help               # every option of python -m benchmarks")
    p.add_argument("--quick", action="store_true", help="small sizes: under two minutes")
    p.set_defaults(func=run, rest=[])


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
