"""Throughput and latency of the worker fleet (convo_fsm.storage.fleet), with the in-process
engine and aiogram's RedisStorage + RedisEventIsolation beside it.

    python -m benchmarks.fleet_bench [--events N] [--sessions S] [--partitions P]

- `fleet/<W> worker(s)`: W FleetWorker processes on one redis-server (no persistence, so
  Redis's disk is not measured), one host process (this one) keeping `--inflight` events in
  flight over S sessions of a counter spec (each event runs one action that changes `data`
  and replies; its step is committed before the host gets the result). Events/s over N
  events; Redis round trips per event, counted by the workers (reads, commits, forwards,
  ticks) and by the host (event batches, result reads); then p50/p99 latency from the
  host's call to the result (split at Redis's XADD), events sent evenly spaced at half
  the measured rate. `--repeat R` runs each fleet row R times and reports the medians.
- `engine/in-process`: one Engine, no store, the same spec, deliver awaited in turn.
- `aiogram/<W> process(es)`: what an aiogram bot with `RedisStorage` and
  `RedisEventIsolation` does per update: take the key's lock, read the state data, write it
  back changed, release; W processes, `--inflight` updates in flight each.

Not a test: nothing is asserted. Prints a Markdown table (and `--json FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.storage_bench import SPEC, start_redis

ROOT = Path(__file__).resolve().parents[1]


# -- a worker process ------------------------------------------------------------------------
async def worker_main(url: str, prefix: str, partitions: int, wid: str) -> None:
    import redis.asyncio as aioredis

    from convo_fsm.storage.fleet import FleetWorker, serve

    client = aioredis.Redis.from_url(url, decode_responses=True)
    worker = FleetWorker(client, [SPEC], worker_id=wid, prefix=prefix, partitions=partitions,
                         lease=5.0, tick=0.5, batch=512, max_inflight=8192, poll=0.005)
    await worker.start()
    print("ready", flush=True)
    await serve(worker)
    print("figures " + json.dumps(worker.figures()), flush=True)
    await client.aclose()


# -- the fleet -------------------------------------------------------------------------------
async def cpu_seconds(client: Any, procs: list[subprocess.Popen[str]]) -> list[float]:
    """CPU time used so far by this process (the host), each worker and redis-server."""
    tick = os.sysconf("SC_CLK_TCK")
    workers = []
    for p in procs:
        fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        workers.append((int(fields[11]) + int(fields[12])) / tick)  # utime + stime
    info = await client.info("cpu")
    return [time.process_time(), *workers,
            float(info["used_cpu_user"]) + float(info["used_cpu_sys"])]


async def owned(client: Any, prefix: str, partitions: int) -> set[str]:
    holders = set()
    for p in range(partitions):
        got = await client.get(f"{prefix}{{p{p}}}:lease")
        if got is None:
            return set()
        holders.add(got.split("|", 1)[1])
    return holders


async def bench_fleet(url: str, workers: int, events: int, sessions: int, partitions: int,
                      inflight: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from convo_fsm.storage.fleet import FleetHost, encode

    prefix = f"fb{uuid.uuid4().hex[:6]}:"
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.fleet_bench", "--worker", url,
                               prefix, str(partitions), f"w{i}"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for i in range(workers)]
    client = aioredis.Redis.from_url(url, decode_responses=True)
    host = FleetHost(client, prefix=prefix, partitions=partitions, send=lambda r: None,
                     timeout=120.0, outbox=False)
    await host.open()
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        while len(await owned(client, prefix, partitions)) != workers:
            await asyncio.sleep(0.05)
        keys = [f"k{i}" for i in range(sessions)]
        await asyncio.gather(*(host.start(SPEC, k) for k in keys))
        print(f"  {workers} worker(s): {sessions} sessions started", file=sys.stderr, flush=True)
        # throughput: `inflight` events always in flight
        done = 0
        host_rt = host.round_trips

        async def lane(i: int) -> None:
            nonlocal done
            n = i
            while n < events:
                assert await host.deliver(keys[n % sessions], "x")
                done += 1
                n += inflight

        cpu0 = await cpu_seconds(client, procs)
        t0 = time.perf_counter()
        await asyncio.gather(*(lane(i) for i in range(inflight)))
        elapsed = time.perf_counter() - t0
        cpu = [b - a for a, b in zip(cpu0, await cpu_seconds(client, procs), strict=True)]
        rate = events / elapsed
        print(f"  {rate:.0f} events/s", file=sys.stderr, flush=True)
        host_trips = host.round_trips - host_rt
        # latency at half that rate, open loop: events sent evenly spaced (not in bursts)
        lat: list[float] = []
        to_xadd: list[float] = []  # the call to Redis's XADD (the entry id's time, ms)
        from_xadd: list[float] = []  # XADD to the result in the host
        n_lat = min(events // 2, int(rate / 2 * 3))  # about three seconds
        gap = 2.0 / rate
        body = encode("x")

        async def one(key: str) -> None:
            s, wall = time.perf_counter(), time.time() * 1e3
            # (what deliver does, keeping the result: its id carries the XADD's time)
            got = await host._call(key, {"t": "d", "e": body})
            assert got["c"]
            lat.append(time.perf_counter() - s)
            xadd_ms = int(got["id"].split("/", 1)[1].split("-", 1)[0])
            to_xadd.append(xadd_ms - wall)
            from_xadd.append(time.time() * 1e3 - xadd_ms)

        tasks = []
        lat_cpu0 = await cpu_seconds(client, procs)
        start = time.perf_counter()
        for i in range(n_lat):
            due = start + i * gap
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.ensure_future(one(keys[i % sessions])))
        while not all(t.done() for t in tasks):
            await asyncio.wait(tasks, timeout=5)
            print(f"  latency: {sum(t.done() for t in tasks)}/{len(tasks)} answered, "
                  f"{len(host._waiting)} waiting, {len(host._early)} early", file=sys.stderr,
                  flush=True)
        lat_cpu = [b - a for a, b in zip(lat_cpu0, await cpu_seconds(client, procs),
                                          strict=True)]
        lat.sort()
        to_xadd.sort()
        from_xadd.sort()
        # and at a light load (200 events/s), where nothing queues
        light: list[float] = []

        async def one_light(key: str) -> None:
            s = time.perf_counter()
            assert await host.deliver(key, "x")
            light.append(time.perf_counter() - s)

        light_tasks = []
        start = time.perf_counter()
        for i in range(400):
            due = start + i / 200
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            light_tasks.append(asyncio.ensure_future(one_light(keys[i % sessions])))
        await asyncio.gather(*light_tasks)
        light.sort()
    finally:
        await host.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        figures = []
        for p in procs:
            print("  waiting for a worker to drain", file=sys.stderr, flush=True)
            out, _ = p.communicate(timeout=120)
            figures += [json.loads(line[8:]) for line in out.splitlines()
                        if line.startswith("figures ")]
        await client.aclose()
    worker_events = sum(f["events"] for f in figures)
    worker_trips = sum(f["round_trips"] for f in figures)
    return {"name": f"fleet/{workers} worker{'s' if workers > 1 else ''}", "events": events,
            "events_per_s": rate, "cpu_us_host": cpu[0] / events * 1e6,
            "cpu_us_workers": sum(cpu[1:-1]) / events * 1e6,
            "cpu_us_redis": cpu[-1] / events * 1e6,
            "half_cpu_us": sum(lat_cpu) / n_lat * 1e6,
            "half_cpu_us_host": lat_cpu[0] / n_lat * 1e6,
            "half_cpu_us_workers": sum(lat_cpu[1:-1]) / n_lat * 1e6,
            "half_cpu_us_redis": lat_cpu[-1] / n_lat * 1e6,
            "worker_round_trips_per_event": worker_trips / max(1, worker_events),
            "host_round_trips_per_event": host_trips / events,
            "p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
            "latency_rate": 1 / gap, "light_p50_ms": light[len(light) // 2] * 1e3,
            "to_xadd_p50_ms": to_xadd[len(to_xadd) // 2],
            "from_xadd_p50_ms": from_xadd[len(from_xadd) // 2]}


# -- the in-process engine -------------------------------------------------------------------
async def bench_engine(events: int, sessions: int) -> dict[str, Any]:
    from convo_fsm import Engine, VirtualClock

    engine = Engine(clock=VirtualClock(), send=lambda r: None)
    keys = [f"k{i}" for i in range(sessions)]
    for key in keys:
        await engine.start(SPEC, key)
    t0 = time.perf_counter()
    for i in range(events):
        await engine.deliver(keys[i % sessions], "x")
    elapsed = time.perf_counter() - t0
    return {"name": "engine/in-process", "events": events, "events_per_s": events / elapsed}


# -- aiogram ---------------------------------------------------------------------------------
async def aiogram_main(url: str, prefix: str, first: int, sessions: int, events: int,
                       inflight: int) -> None:
    import redis.asyncio as aioredis
    from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
    from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

    client = aioredis.Redis.from_url(url, max_connections=4 * inflight + 16)
    builder = DefaultKeyBuilder(prefix=prefix)
    storage = RedisStorage(client, key_builder=builder)
    isolation = RedisEventIsolation(client, key_builder=builder)
    keys = [StorageKey(bot_id=1, chat_id=first + i, user_id=first + i) for i in range(sessions)]

    async def lane(i: int) -> None:
        n = i
        while n < events:
            key = keys[n % sessions]
            async with isolation.lock(key):
                data = await storage.get_data(key)
                data["n"] = data.get("n", 0) + 1
                await storage.set_data(key, data)
            n += inflight

    t0 = time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(inflight)))
    print(json.dumps({"elapsed": time.perf_counter() - t0}), flush=True)
    await client.aclose()


def bench_aiogram(url: str, procs: int, events: int, sessions: int, inflight: int
                  ) -> dict[str, Any]:
    prefix = f"ab{uuid.uuid4().hex[:6]}"
    share = events // procs
    running = [subprocess.Popen([sys.executable, "-m", "benchmarks.fleet_bench", "--aiogram",
                                 url, prefix, str(i * sessions), str(sessions // procs),
                                 str(share), str(inflight)], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True) for i in range(procs)]
    elapsed = 0.0
    for p in running:
        out, _ = p.communicate(timeout=600)
        elapsed = max(elapsed, json.loads(out.strip().splitlines()[-1])["elapsed"])
    return {"name": f"aiogram/{procs} process{'es' if procs > 1 else ''}",
            "events": share * procs, "events_per_s": share * procs / elapsed,
            "worker_round_trips_per_event": 4.0}  # lock, get, set, unlock (each awaited)


def table(rows: list[dict[str, Any]]) -> str:
    def f(row: dict[str, Any], key: str, fmt: str) -> str:
        return format(row[key], fmt) if key in row else "-"

    lines = ["| run | events | events/s | CPU µs/event host / workers / Redis | worker RT/event "
             "| host RT/event | latency at events/s | p50 ms | host→XADD / XADD→result p50 ms "
             "| p99 ms | p50 ms at 200/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        split = (f"{row['to_xadd_p50_ms']:.2f} / {row['from_xadd_p50_ms']:.2f}"
                 if "to_xadd_p50_ms" in row else "-")
        cpu = (f"{row['cpu_us_host']:.0f} / {row['cpu_us_workers']:.0f} / "
               f"{row['cpu_us_redis']:.0f}" if "cpu_us_host" in row else "-")
        lines.append(f"| {row['name']} | {row['events']} | {row['events_per_s']:,.0f} | {cpu} | "
                     f"{f(row, 'worker_round_trips_per_event', '.3f')} | "
                     f"{f(row, 'host_round_trips_per_event', '.3f')} | "
                     f"{f(row, 'latency_rate', ',.0f')} | "
                     f"{f(row, 'p50_ms', '.2f')} | {split} | {f(row, 'p99_ms', '.2f')} | "
                     f"{f(row, 'light_p50_ms', '.2f')} |")
    return "\n".join(lines)


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over repeated runs (and the runs themselves, kept)."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            row[key] = statistics.median(r[key] for r in runs)
    row["runs"] = runs
    return row


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def section(rows: list[dict[str, Any]], args: argparse.Namespace,
            load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    by = {r["name"]: r for r in rows}
    one, two = by.get("fleet/1 worker"), by.get("fleet/2 workers")
    ag1 = by.get("aiogram/1 process")
    command = ("python -m benchmarks.fleet_bench " + " ".join(
        sys.argv[1:] if sys.argv[1:] else []))
    lines = [
        "## 11. Several worker processes: the fleet (issue 13)", "",
        f"Made by `{command.strip()}` at commit {_commit()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, load "
        f"average before / after {[round(x, 2) for x in load_before]} / "
        f"{[round(x, 2) for x in load_after]}. One redis-server without persistence; the "
        "host (this process) and the worker processes share the 2 cores with it (and with "
        "whatever else runs on the machine). A counter spec: each event runs an action that "
        "changes `data` and replies, and is committed (fenced compare-and-set with the "
        "event's id) before the host gets its result. Events/s with "
        f"{args.inflight} events in flight; RT = Redis round trips per event (the workers "
        "count reads, waits for events, commits and lease ticks; the host its event "
        "batches and result reads); latency is from the host's call to its result, with "
        "events sent evenly spaced at half the measured rate (split at Redis's XADD, the "
        "time in the entry id), and at 200 events/s."
        + (f" Each fleet row is the median of {args.repeat} runs (listed below it)."
           if args.repeat > 1 else ""), "",
        table(rows), ""]
    for row in rows:
        if len(row.get("runs", ())) > 1:
            lines.append(f"- {row['name']}, each run (events/s, p50 ms at half load, load "
                         "average before): " + "; ".join(
                             f"{r['events_per_s']:,.0f}, {r['p50_ms']:.1f}, "
                             f"{r['load_before']:.2f}" for r in row["runs"]) + ".")
    cores = os.cpu_count() or 1
    if one and two:
        need = two["cpu_us_host"] + two["cpu_us_workers"] + two["cpu_us_redis"]
        alone = 1e6 / one["cpu_us_workers"]
        lines.append(
            f"- Two workers / one: {two['events_per_s'] / one['events_per_s']:.2f}x. "
            f"Saturated, the host, the workers and Redis together spend {need:.0f} µs of CPU "
            f"per event with two workers: at {two['events_per_s']:,.0f} events/s they had "
            f"{two['events_per_s'] * need / 1e6:.2f} of the {cores} cores (other jobs the "
            f"rest), and {cores} cores with nothing else on them cap the whole fleet at about "
            f"{cores * 1e6 / need:,.0f} events/s. One worker costs "
            f"{one['cpu_us_workers']:.0f} µs/event, so on a core of its own it does about "
            f"{alone:,.0f} events/s, and the host and Redis need "
            f"{alone * (one['cpu_us_host'] + one['cpu_us_redis']) / 1e6:.2f} core beside it "
            f"at that rate: 1.7x one worker needs about "
            f"{1.7 * alone * (need / 1e6):.1f} cores, more than this machine has. A second "
            "worker here adds parallelism with the host and Redis, not a core.")
    if one and ag1:
        lines.append(f"- One fleet worker / aiogram in one process (lock, read, write, "
                     f"unlock per update): {one['events_per_s'] / ag1['events_per_s']:.1f}x.")
    if one:
        rt = one.get("worker_round_trips_per_event", 0) + one.get("host_round_trips_per_event", 0)
        sat = one["cpu_us_host"] + one["cpu_us_workers"] + one["cpu_us_redis"]
        lines.append(
            f"- At half load one worker's fleet spends {one['half_cpu_us']:.0f} µs of CPU per "
            f"event ({one['half_cpu_us_host']:.0f} host, {one['half_cpu_us_workers']:.0f} "
            f"worker, {one['half_cpu_us_redis']:.0f} Redis), against {sat:.0f} saturated: "
            "smaller batches carry "
            "the same per-call costs (a Python asyncio round trip over loopback TCP, the "
            "system calls and wake-ups of three processes) over fewer events. At "
            f"{one['latency_rate']:,.0f} events/s that is "
            f"{one['latency_rate'] * one['half_cpu_us'] / 1e6:.2f} cores, against the "
            f"{one['events_per_s'] * sat / 1e6:.2f} the fleet had in the saturated run: "
            "when the two are close, events queue, and the latency is that queue.")

        def met(ok: bool) -> str:
            return "met" if ok else "not met"

        ratio = (two or one)["events_per_s"] / one["events_per_s"]
        lines.append(
            "- Issue 13's targets: >= 10,000 events/s with one worker: "
            f"{one['events_per_s']:,.0f} ({met(one['events_per_s'] >= 10_000)}); >= 1.7x with "
            f"two: {ratio:.2f}x ({met(ratio >= 1.7)}); p50 < 5 ms at half load: "
            f"{one['p50_ms']:.1f} ms ({met(one['p50_ms'] < 5)}; {one['light_p50_ms']:.1f} ms "
            f"at 200 events/s); <= 2 round trips per event: {rt:.3f} ({met(rt <= 2)}).")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, prefix, parts, wid = sys.argv[2:6]
        if os.environ.get("FLEET_BENCH_PROFILE"):  # a cProfile of the worker, for tuning
            import cProfile

            cProfile.runctx("asyncio.run(worker_main(url, prefix, int(parts), wid))",
                            globals(), locals(), f"{os.environ['FLEET_BENCH_PROFILE']}.{wid}")
            return 0
        asyncio.run(worker_main(url, prefix, int(parts), wid))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--aiogram":
        url, prefix, first, sessions, events, inflight = sys.argv[2:8]
        asyncio.run(aiogram_main(url, prefix, int(first), int(sessions), int(events),
                                 int(inflight)))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--sessions", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--inflight", type=int, default=2_000)
    parser.add_argument("--redis")
    parser.add_argument("--json")
    parser.add_argument("--out", help="write RESULTS.md's fleet section to this file")
    parser.add_argument("--skip-aiogram", action="store_true")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each fleet row this many times and report the medians")
    args = parser.parse_args()
    url, proc = (args.redis, None) if args.redis else start_redis()
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    try:
        rows.append(asyncio.run(bench_engine(args.events, args.sessions)))
        counts = [int(x) for x in args.workers.split(",")]
        runs: dict[int, list[dict[str, Any]]] = {w: [] for w in counts}
        for _ in range(args.repeat):  # (interleaved: a busy spell of the machine hits both)
            for w in counts:
                load = os.getloadavg()[0]
                run = asyncio.run(bench_fleet(url, w, args.events, args.sessions,
                                              args.partitions, args.inflight))
                run["load_before"] = load
                runs[w].append(run)
                print(table([run]), file=sys.stderr, flush=True)
        rows += [median_row(runs[w]) for w in counts]
        if not args.skip_aiogram:
            for w in (1, 2):
                rows.append(bench_aiogram(url, w, args.events // 2, args.sessions,
                                          min(200, args.inflight)))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    load_after = os.getloadavg()
    if args.out:
        Path(args.out).write_text(section(rows, args, load_before, load_after))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.events} events over {args.sessions} sessions, "
          f"{args.partitions} partitions, {args.inflight} in flight")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
