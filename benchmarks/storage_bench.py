"""Events/s and per-event latency of an engine with each store.

    python -m benchmarks.storage_bench [--events N] [--sessions S] [--redis URL]

- `engine/<store>`: one Engine on a VirtualClock, S sessions of a counter spec (each event
  runs one action that changes `data` and replies), N events round-robin over them, each
  `deliver` awaited in turn, with no store, MemoryStore, SqliteStore (a file, WAL) and
  RedisStore. With a store, each event's commit is inside its latency.

Several worker processes on one Redis (the fleet) are measured by `benchmarks.fleet_bench`.

Without `--redis` (or CONVO_FSM_REDIS_URL) a redis-server is started on a free port if the
binary is there. Numbers are printed as a Markdown table. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from convo_fsm import KEEP, STOP, Context, Engine, On, Spec, State, VirtualClock
from convo_fsm.storage import MemoryStore, SqliteStore, Store


def count(ctx: Context) -> None:
    ctx.data["n"] = ctx.data.get("n", 0) + 1
    ctx.reply(str(ctx.data["n"]))


SPEC = Spec("bench-counter", "on", [State("on", on=[On("message", KEEP, action=count)])],
            any_state=[On("stop", STOP)])


def summary(name: str, latencies: list[float], elapsed: float) -> dict[str, Any]:
    lat = sorted(latencies)
    return {"name": name, "events": len(lat), "events_per_s": len(lat) / elapsed,
            "mean_us": statistics.fmean(lat) * 1e6, "p50_us": lat[len(lat) // 2] * 1e6,
            "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6}


async def bench_engine(name: str, store: Store | None, events: int, sessions: int
                       ) -> dict[str, Any]:
    engine = Engine(clock=VirtualClock(), store=store, send=lambda r: None)
    keys = [f"k{i}" for i in range(sessions)]
    for key in keys:
        await engine.start(SPEC, key)
    latencies = []
    start = time.perf_counter()
    for i in range(events):
        t0 = time.perf_counter()
        await engine.deliver(keys[i % sessions], "hi")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    await engine.close()
    if store is not None:
        await store.close()
    return summary(name, latencies, elapsed)


def start_redis() -> tuple[str, subprocess.Popen[str] | None]:
    url = os.environ.get("CONVO_FSM_REDIS_URL")
    if url:
        return url, None
    binary = shutil.which("redis-server")
    if binary is None:
        return "", None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ready to accept connections" in line:
            break
    return f"redis://127.0.0.1:{port}/0", proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--redis", help="a Redis URL (default: CONVO_FSM_REDIS_URL, or start one)")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the table here (benchmarks/storage.md is the section "
                             "RESULTS.md includes)")
    args = parser.parse_args()
    url, server = (args.redis, None) if args.redis else start_redis()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores: list[tuple[str, Any]] = [
                ("engine/none", lambda: None), ("engine/memory", MemoryStore),
                ("engine/sqlite", lambda: SqliteStore(Path(tmp) / "bench.db"))]
            if url:
                from convo_fsm.storage import RedisStore

                stores.append(("engine/redis", lambda: RedisStore.from_url(
                    url, prefix=f"bench:{uuid.uuid4().hex[:8]}:")))
            for name, make in stores:
                rows.append(asyncio.run(bench_engine(name, make(), args.events, args.sessions)))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    command = " ".join(["python -m benchmarks.storage_bench", *sys.argv[1:]])
    lines = [f"Made by `{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"{args.events} events over {args.sessions} sessions; Python "
             f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs.", "",
             "| run | events/s | mean µs | p50 µs | p99 µs |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['events_per_s']:,.0f} | {r['mean_us']:,.0f} | "
              f"{r['p50_us']:,.0f} | {r['p99_us']:,.0f} |" for r in rows]
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
