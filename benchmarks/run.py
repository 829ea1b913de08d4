"""`python -m benchmarks`: run every scenario in its own subprocess, then write the report.

Each job is one (system, workload, variant, size): a fresh interpreter that sets up N
sessions, runs several timed repetitions and prints one JSON line (`benchmarks.common`).
Jobs run one after another (never in parallel: they would time each other), ordered so
that the systems compared at one size run next to each other in time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks import env
from benchmarks.common import MARK

__all__ = ["Job", "jobs", "main", "run_job"]


@dataclass(frozen=True)
class Job:
    module: str  # benchmarks.scenarios.<module>
    workload: str
    size: int
    mode: str = ""
    reps: int = 5
    events: int = 20_000
    budget: float = 0.6
    interpreter: str = "main"  # main | astrbot
    extra: tuple[str, ...] = field(default=())

    def argv(self, python: str) -> list[str]:
        args = [python, "-m", f"benchmarks.scenarios.{self.module}", "--workload", self.workload,
                "--size", str(self.size), "--reps", str(self.reps), "--events", str(self.events),
                "--budget", str(self.budget), *self.extra]
        return args + (["--mode", self.mode] if self.mode else [])


K, M = 1_000, 1_000_000


def have_compat() -> bool:
    """The AstrBot-compat layer is built in parallel: its workloads run once it exists."""
    try:
        return importlib.util.find_spec("convo_fsm.compat.astrbot") is not None
    except ModuleNotFoundError:
        return False


def have_frameworks() -> tuple[str, ...]:
    """The bot frameworks installed here whose own conversation tools and convo_fsm adapters
    are compared (scenario modules; the `aiogram`, `nonebot` and `ptb` extras, all in dev)."""
    return tuple(name for name, module in (("aiogram", "aiogram"), ("nonebot", "nonebot"),
                                           ("ptb_adapter", "telegram"))
                 if importlib.util.find_spec(module) is not None)


# NoneBot's `got` checks one temporary matcher per waiting user for every event (about
# 1 ms each here): 100k waiting users would be minutes per event, so it stops at 10k, with
# few events.
NONEBOT_GOT_MAX = 10_000
NONEBOT_GOT_EVENTS = {1_000: 10, 10_000: 2}
# PTB's ConversationHandler keeps one APScheduler job per conversation, inserted into a sorted
# list: setting up 100k is quadratic. The astrbot-venv PTB scenario stops at 10k too.
PTB_CONV_MAX = 10_000


def framework_jobs(names: Sequence[str], quick: bool, tiny: bool) -> list[Job]:
    """aiogram's FSM, NoneBot's `got` and PTB's ConversationHandler next to convo_fsm through
    each adapter, and each framework's bare dispatch (the same bot without conversations)."""
    if tiny:
        sizes, reps, events, budget = [3], 1, 20, 0.05
    elif quick:
        sizes, reps, events, budget = [K, 10 * K], 3, 5_000, 0.2
    else:
        sizes, reps, events, budget = [K, 10 * K, 100 * K], 5, 20_000, 0.6
    out: list[Job] = []
    peers = {"aiogram": "fsm", "nonebot": "got", "ptb_adapter": "conv"}
    for name in names:
        for workload in ("deliver", "ordinary", "memory"):
            for n in sizes:
                for mode in ("bare", peers[name], "convo"):
                    if workload == "deliver" and mode == "bare":
                        continue
                    if mode == "got" and n > NONEBOT_GOT_MAX:
                        continue
                    if mode == "conv" and n > PTB_CONV_MAX:
                        continue
                    if (name, workload, mode) == ("nonebot", "memory", "bare") and n > K:
                        continue  # N commands through NoneBot: ~4 ms each, for a baseline
                    got = mode == "got"
                    ev = min(NONEBOT_GOT_EVENTS.get(n, events), events) if got else events
                    if workload == "memory":
                        out.append(Job(name, workload, n, mode, reps=1))
                    else:
                        out.append(Job(name, workload, n, mode, reps=min(reps, 3) if got
                                       else reps, events=ev, budget=budget))
    return out


def jobs(quick: bool, *, astrbot: bool, ptb: bool, compat: bool, tiny: bool = False,
         frameworks: Sequence[str] = ()) -> list[Job]:
    """The run's jobs. `tiny` (for the test suite) runs each scenario once at size <= 10."""
    if tiny:
        sz = {"deliver": [3], "ordinary": [3], "memory": [10], "lifecycle": [3], "step": [3]}
        peer_sz = sz
        big: dict[str, list[int]] = {k: [] for k in sz}
        step_peer = [3]
        reps, events, budget, lreps = 1, 20, 0.05, 1
    elif quick:
        sz = {"deliver": [1, K, 10 * K], "ordinary": [0, K, 10 * K], "memory": [10 * K],
              "lifecycle": [K], "step": [K]}
        peer_sz = {"deliver": [10 * K], "ordinary": [10 * K], "memory": [10 * K],
                   "lifecycle": [K], "step": [K]}
        big = {k: [] for k in sz}
        step_peer = [K]
        reps, events, budget, lreps = 3, 5_000, 0.2, 1
    else:
        sz = {"deliver": [1, K, 10 * K, 100 * K], "ordinary": [0, 1, K, 10 * K, 100 * K],
              "memory": [K, 10 * K, 100 * K], "lifecycle": [K, 10 * K, 100 * K],
              "step": [1, K, 10 * K, 100 * K]}
        peer_sz = sz
        big = {k: [M] for k in sz}  # convo_fsm alone: the peers cannot
        step_peer = [1, K, 10 * K]
        reps, events, budget, lreps = 5, 20_000, 0.6, 3
    out: list[Job] = []
    common = {"reps": reps, "events": events, "budget": budget}

    def lifecycle_reps(n: int) -> int:
        return 1 if n >= 100 * K else lreps

    for n in sorted(set(sz["deliver"] + big["deliver"])):
        for mode in ("route", "direct"):
            out.append(Job("convo", "deliver", n, mode, **common))
            if astrbot and n in peer_sz["deliver"]:
                out.append(Job("astrbot", "deliver", n, mode, interpreter="astrbot", **common))
        if compat and n in peer_sz["deliver"]:
            out.append(Job("compat", "deliver", n, "route", **common))
        if ptb and n in peer_sz["deliver"]:
            out.append(Job("ptb", "deliver", n, "route", interpreter="astrbot", **common))
    for n in sorted(set(sz["ordinary"] + big["ordinary"])):
        out.append(Job("convo", "ordinary", n, "route", **common))
        if astrbot and n in peer_sz["ordinary"]:
            out.append(Job("astrbot", "ordinary", n, "route", interpreter="astrbot", **common))
        if compat and n in peer_sz["ordinary"]:
            out.append(Job("compat", "ordinary", n, "route", **common))
    for n in sorted(set(sz["memory"] + big["memory"])):
        for mode in ("rss", "tracemalloc"):
            out.append(Job("convo", "memory", n, mode, reps=1))
            if astrbot and n in peer_sz["memory"] and (mode == "rss" or not quick):
                out.append(Job("astrbot", "memory", n, mode, reps=1, interpreter="astrbot"))
            if compat and n in peer_sz["memory"] and (mode == "rss" or not quick):
                out.append(Job("compat", "memory", n, mode, reps=1))
    for n in sorted(set(sz["lifecycle"] + big["lifecycle"])):
        out.append(Job("convo", "lifecycle", n, reps=lifecycle_reps(n)))
        if astrbot and n in peer_sz["lifecycle"]:
            out.append(Job("astrbot", "lifecycle", n, reps=lifecycle_reps(n),
                           interpreter="astrbot"))
        if ptb and n in peer_sz["lifecycle"] and n <= 10 * K:
            out.append(Job("ptb", "lifecycle", n, reps=lifecycle_reps(n), interpreter="astrbot"))
    for n in sorted(set(sz["step"] + big["step"])):
        for system in ("convo-step", "convo-step-call", "dict-fsm", "dict-lookup"):
            out.append(Job("step", system, n, **common))
        if n in step_peer:
            for system in ("transitions", "transitions-async"):
                out.append(Job("step", system, n, **common))
    return out + framework_jobs(frameworks, quick, tiny)


def run_job(job: Job, python: str, *, timeout: float = 600) -> dict[str, object]:
    """Run one job in its own interpreter; its JSON result, or an `error` entry."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(job.argv(python), capture_output=True, text=True,
                              cwd=env.ROOT, env=env.child_env(), timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"job": asdict(job), "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            result: dict[str, object] = json.loads(line[len(MARK):])
            result["job"] = asdict(job)
            result["wall_s"] = wall
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"job": asdict(job), "error": f"exit {proc.returncode}: " + " | ".join(tail)}


def _job_key(job: dict[str, object]) -> tuple[object, ...]:
    return (job["module"], job["workload"], job["mode"], job["size"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="small sizes, fewer repetitions: under two minutes")
    p.add_argument("--out", type=Path, default=None,
                   help="where RESULTS.md, results.json and the plots go "
                        "(default: benchmarks/, or benchmarks/.work/quick with --quick)")
    p.add_argument("--astrbot-python", default=None,
                   help="python of a venv with astrbot 4.29.3 (default: find or build one)")
    p.add_argument("--own-astrbot-venv", action="store_true",
                   help="do not reuse the repository's .venv-astrbot; build benchmarks/.work's")
    p.add_argument("--no-astrbot", action="store_true", help="skip the AstrBot and PTB peers")
    p.add_argument("--no-ptb", action="store_true", help="skip python-telegram-bot")
    p.add_argument("--no-frameworks", action="store_true",
                   help="skip aiogram's FSM, NoneBot's got, PTB's ConversationHandler in this "
                        "interpreter, and convo_fsm's adapters for them")
    p.add_argument("--only", default="",
                   help="comma-separated workloads to run (deliver,ordinary,memory,lifecycle,step)")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite RESULTS.md and the plots from the saved results.json")
    p.add_argument("--list", action="store_true", help="print the jobs and exit")
    p.add_argument("--note", default="", help="a sentence for RESULTS.md about this run")
    p.add_argument("--merge", action="store_true",
                   help="keep the saved results.json and replace only these jobs' results "
                        "(with --only); RESULTS.md names this later run and its machine")
    args = p.parse_args(argv)
    out_dir: Path = args.out or (env.WORK / "quick" if args.quick else env.ROOT / "benchmarks")
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "results.json"
    from benchmarks import report  # matplotlib is imported only when writing plots

    if args.report_only:
        report.write(json.loads(raw.read_text()), out_dir)
        return 0
    astrbot = None
    if not args.no_astrbot:
        # --list builds nothing: it lists the AstrBot jobs only if the venv is already there.
        astrbot = env.astrbot_python(args.astrbot_python, reuse_repo=not args.own_astrbot_venv,
                                     create=not args.list)
    compat = have_compat()
    todo = jobs(args.quick, astrbot=astrbot is not None,
                ptb=astrbot is not None and not args.no_ptb, compat=compat,
                frameworks=() if args.no_frameworks else have_frameworks())
    if args.only:
        wanted = set(args.only.split(","))
        todo = [j for j in todo if j.workload in wanted or j.module in wanted
                or (j.module == "step" and "step" in wanted)]
    if args.list:
        for j in todo:
            print(" ".join(j.argv(j.interpreter)))
        return 0
    command = " ".join(["python -m benchmarks", *map(shlex.quote, sys.argv[1:] if argv is None
                                                      else argv)])
    run = {"command": command, "argv": sys.argv[1:], "machine": env.machine(astrbot),
           "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "compat": compat, "note": args.note, "results": []}
    results: list[dict[str, object]] = run["results"]  # type: ignore[assignment]
    saved = run
    if args.merge and raw.exists():
        # Keep the saved run; its results for these jobs are replaced by this run's.
        saved = json.loads(raw.read_text())
        mine = {_job_key(asdict(j)) for j in todo}
        kept = [r for r in saved["results"] if _job_key(r["job"]) not in mine]
        saved["merged"] = [m for m in saved.get("merged", []) if m["command"] != command]
        saved["merged"].append({k: run[k] for k in ("command", "machine", "started")}
                               | {"jobs": len(todo)})
    t0 = time.perf_counter()
    for i, job in enumerate(todo, 1):
        python = str(astrbot) if job.interpreter == "astrbot" else sys.executable
        result = run_job(job, python)
        results.append(result)
        status = result.get("error") or f"{result.get('wall_s', 0):.1f} s"
        print(f"[{i}/{len(todo)}] {job.module} {job.workload} {job.mode} n={job.size}: {status}",
              file=sys.stderr, flush=True)
        if saved is not run:
            saved["results"] = kept + results
        raw.write_text(json.dumps(saved, indent=1))
    if saved is run:
        run["duration_s"] = time.perf_counter() - t0
        run["load_after"] = env.machine(None)["load_before"]
    else:
        saved["merged"][-1]["duration_s"] = time.perf_counter() - t0
        saved["merged"][-1]["load_after"] = env.machine(None)["load_before"]
    raw.write_text(json.dumps(saved, indent=1))
    report.write(saved, out_dir)
    print(f"bench: {len(todo)} jobs in {time.perf_counter() - t0:.0f} s; wrote "
          f"{out_dir}/RESULTS.md", file=sys.stderr)
    return 0
