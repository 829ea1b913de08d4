"""The admin and metrics at scale: page renders and scrapes at 100k live sessions, and what
the metrics hook costs `Engine.dispatch`.

    .venv/bin/python -m benchmarks.admin_bench --out benchmarks/admin.md \
        [--results benchmarks/RESULTS.md]

- Pages: an engine (virtual clock) with N live sessions of one spec, states and deadlines
  spread; each page is fetched through the ASGI app in-process (httpx's ASGITransport:
  routing, the query, the template, no socket) `--reps` times; median and max. The SQLite
  store mode (`convo-fsm serve`) is measured the same way over a file holding the N
  sessions, with its first reads after a start; `--redis URL` adds the Redis store's rows
  (N sessions written under a prefix of their own, removed after).
- Dispatch: `--events` events to 10k waiting sessions (a KEEP with an async action, the
  benchmarks' delivery scenario), `--rounds` rounds, for: no hook, a plain callable doing
  nothing (what the engine's TraceRecords cost alone), `Metrics`, `Metrics(timings=False)`
  and `tee(Metrics, Transcript)`.
  The rounds alternate between configurations so load changes hit them alike.
With `--results`, the markdown also replaces (or appends) section 8 of RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from convo_fsm import KEEP, STOP, Context, Engine, Message, On, Spec, State, Timeout, VirtualClock
from convo_fsm.admin import StoreSource, app, store_app
from convo_fsm.metrics import Metrics, tee
from convo_fsm.storage import RedisStore, SqliteStore, WallClock
from convo_fsm.testing import Transcript


async def _noop_action(ctx: Context) -> None:
    return None


SPEC = Spec(
    name="bench",
    initial="s0",
    states=[State(f"s{i}", on=[On("message", KEEP, action=_noop_action, reset_timeout=True),
                               On("next", f"s{(i + 1) % 4}")],
                  timeout=Timeout(60 + i * 30, STOP)) for i in range(4)],
)


async def _fill(engine: Engine, n: int) -> list[str]:
    keys = [f"local:user:u{i:06d}" for i in range(n)]
    for i, key in enumerate(keys):
        await engine.start(SPEC, key)
        if i % 4:
            engine.force(key, f"s{i % 4}")
    return keys


async def _timed(client: httpx.AsyncClient, url: str, reps: int) -> tuple[float, float, int]:
    times = []
    status = 0
    for _ in range(reps):
        t = time.perf_counter()
        r = await client.get(url)
        times.append(time.perf_counter() - t)
        status = r.status_code
        assert status == 200, (url, status, r.text[:200])
    return statistics.median(times) * 1000, max(times) * 1000, len(r.content)


async def pages(n: int, reps: int) -> list[tuple[str, float, float, int]]:
    metrics = Metrics()
    engine = Engine(clock=VirtualClock(), trace=metrics)
    metrics.bind(engine)
    await _fill(engine, n)
    gc.collect()
    admin = app(engine, metrics=metrics, token="benchmark-token")
    rows = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                 base_url="http://b") as c:
        await c.get("/")  # draws the diagram once (Graphviz), as a running admin has
        for label, url in [
            ("sessions page 1 (50 rows)", "/sessions"),
            ("sessions page 1000 (50 rows)", "/sessions?page=1000"),
            ("sessions, key search", "/sessions?q=u0999"),
            ("sessions, spec + state filter", "/sessions?spec=bench&state=s2"),
            ("one session", "/session?key=local:user:u000123"),
            ("overview (diagram cached)", "/"),
            ("/metrics scrape", "/metrics"),
        ]:
            med, worst, size = await _timed(c, url, reps)
            rows.append((f"engine: {label}", med, worst, size))
    await engine.close()
    return rows


STORE_PAGES = [
    ("sessions page 1 (50 rows)", "/sessions"),
    ("sessions page 1000 (50 rows)", "/sessions?page=1000"),
    ("sessions, key search", "/sessions?q=u0999"),
    ("sessions, spec + state filter", "/sessions?spec=bench&state=s2"),
    ("one session", "/session?key=local:user:u000123"),
]


async def _first_reads(make: Callable[[], Any], url: str, reps: int) -> tuple[float, float, int]:
    """`url` fetched first thing from a new admin each time (as after `convo-fsm serve` starts:
    nothing read yet)."""
    times, size = [], 0
    for _ in range(reps):
        admin = make()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                     base_url="http://b") as c:
            t = time.perf_counter()
            r = await c.get(url)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, (url, r.status_code)
            size = len(r.content)
    return statistics.median(times) * 1000, max(times) * 1000, size


async def _store_rows(label: str, make: Callable[[], Any], n: int, reps: int,
                      pages: list[tuple[str, str]]) -> list[tuple[str, float, float, int]]:
    rows = []
    first = max(3, reps // 4)
    med, worst, size = await _first_reads(make, "/sessions", first)
    rows.append((f"{label}: sessions page 1, first read after start", med, worst, size))
    admin = make()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=admin),
                                 base_url="http://b") as c:
        r = await c.get("/sessions")
        assert f"{n:,}".replace(",", "") in r.text
        for page_label, url in pages:
            med, worst, size = await _timed(c, url, reps)
            rows.append((f"{label}: {page_label}", med, worst, size))
        med, worst, size = await _timed(c, "/metrics", reps)
        rows.append((f"{label}: /metrics scrape (counts kept 1 s)", med, worst, size))
        source = admin.source
        assert isinstance(source, StoreSource)
        times = []
        for _ in range(first):
            source.invalidate()  # as after an act: the counts are read again first
            t = time.perf_counter()
            r = await c.get("/metrics")
            times.append(time.perf_counter() - t)
        rows.append((f"{label}: /metrics scrape, counts read first",
                     statistics.median(times) * 1000, max(times) * 1000, len(r.content)))
    med, worst, size = await _first_reads(make, "/metrics", first)
    rows.append((f"{label}: /metrics scrape, first read after start", med, worst, size))
    return rows


async def store_pages(n: int, reps: int) -> list[tuple[str, float, float, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = SqliteStore(path)
        engine = Engine(store=store, clock=WallClock())
        await _fill(engine, n)
        await asyncio.sleep(0.1)
        await engine.close()
        await store.close()
        return await _store_rows(
            "sqlite store", lambda: store_app(SqliteStore(path), [SPEC], token="benchmark-token"),
            n, reps, STORE_PAGES)


async def redis_pages(url: str, n: int, reps: int) -> list[tuple[str, float, float, int]]:
    prefix = f"admin-bench:{os.getpid()}:"
    store = RedisStore.from_url(url, prefix=prefix)
    engine = Engine(store=store, clock=WallClock())
    try:
        await _fill(engine, n)
        await asyncio.sleep(0.1)
        await engine.close()
        # Each admin's listing is its own: a new one reads all N records first.
        return await _store_rows(
            "redis store", lambda: store_app(RedisStore.from_url(url, prefix=prefix), [SPEC],
                                             token="benchmark-token"),
            n, reps, STORE_PAGES)
    finally:
        cleanup = RedisStore.from_url(url, prefix=prefix)
        keys = [k async for k in cleanup.redis.scan_iter(match=prefix + "*", count=10_000)]
        for i in range(0, len(keys), 10_000):
            await cleanup.redis.delete(*keys[i:i + 10_000])
        await cleanup.close()


STORE_NOTES = (
    "What a store page costs: page 1 reads about its own rows (the `due` index or sorted set "
    "bounds the rows a page can come from: the earliest of deadline and warning is never "
    "after the deadline), so the first page after a start is as fast as any. A deep page "
    "costs in proportion to its depth: SQLite parses the records before it in C (or scans "
    "once; past the middle it counts from the end), Redis reads the bodies of every key "
    "before it. An SQLite spec/state filter or key search is one scan of the table (no index "
    "of ours: an index on the deadline would cost every engine write a JSON parse, about "
    "15 µs on a 50 µs save). Counts per state (overview, `/metrics`) are an SQLite GROUP "
    "BY or a Redis Lua scan of spec and state, kept 1 s and re-read in the background; a "
    "scrape reads them first only after a start or an act.")


KINDS = {
    "none": "no hook",
    "noop": "a plain callable doing nothing (the engine builds TraceRecords for it)",
    "metrics": "Metrics",
    "metrics, timings off": "Metrics(timings=False)",
    "metrics+transcript": "tee(Metrics, Transcript)",
}


def _hook(kind: str) -> tuple[Callable[[Any], object] | None, Metrics | None]:
    if kind == "none":
        return None, None
    if kind == "noop":
        return (lambda record: None), None
    metrics = Metrics(timings=kind != "metrics, timings off")
    if kind == "metrics+transcript":
        return tee(metrics, Transcript()), metrics
    return metrics, metrics


async def _dispatch_round(kind: str, sessions: int, events: int) -> float:
    hook, metrics = _hook(kind)
    engine = Engine(clock=VirtualClock(), trace=hook)
    if metrics is not None:
        metrics.bind(engine)
    msgs = [Message("hi", sender=f"u{i}") for i in range(sessions)]
    for m in msgs:
        await engine.start(SPEC, engine.key("member", m))
    batch = [msgs[(i * 7919) % sessions] for i in range(events)]
    gc.collect()
    t = time.perf_counter()
    for i, m in enumerate(batch):
        await engine.dispatch(m)
        if i % 100 == 0:
            await asyncio.sleep(0)
    elapsed = (time.perf_counter() - t) / events
    await engine.close()
    return elapsed * 1e6


async def dispatch(sessions: int, events: int, rounds: int) -> dict[str, list[float]]:
    kinds = list(KINDS)
    out: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:  # each first in turn
            out[kind].append(await _dispatch_round(kind, sessions, events))
    return out


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(args: argparse.Namespace, page_rows: list[tuple[str, float, float, int]],
           disp: dict[str, list[float]]) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "## 8. Admin pages and metrics",
        "",
        f"Made by `python -m benchmarks.admin_bench --sessions {args.sessions} --reps "
        f"{args.reps} --events {args.events} --rounds {args.rounds}"
        f"{' --redis URL' if args.redis else ''}` at commit {_commit()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Python "
        f"{platform.python_version()}, {cpu}, {os.cpu_count()} CPUs, load average before "
        f"{args.load[0]:.2f} (other agents shared the machine: medians are the figures to "
        "read).",
        "",
        f"Pages at {args.sessions:,} live sessions (4 states, deadlines spread), fetched "
        "through the ASGI app in-process (routing, query, template; no socket); targets: "
        "a sessions page < 300 ms, a scrape < 100 ms. 'engine' is `admin.app(engine, "
        "metrics=...)`; 'sqlite store' is `convo-fsm serve --store FILE` (pages by SQL, "
        "counts per state kept 1 s); 'redis store' the same over Redis (pages by the due "
        "sorted set and the candidates' bodies, a key search over the key set, counts by a "
        "Lua script over 2,000 keys at a time, kept 1 s, which a spec or state filter reads "
        "too). 'First read after start' is a new admin's first request.",
        "",
        "| page | median ms | max ms | bytes |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {label} | {med:.1f} | {worst:.1f} | {size:,} |"
              for label, med, worst, size in page_rows]
    if any(label.startswith(("sqlite", "redis")) for label, *_ in page_rows):
        lines += ["", STORE_NOTES]
    base = min(disp["none"])
    lines += [
        "",
        f"`Engine.dispatch` to one of 10k waiting sessions (KEEP, async action, timeout "
        f"reset), {args.events:,} events a round, best of {args.rounds} alternating rounds; "
        "target with Prometheus counters on: within 1.3x of no hook.",
        "",
        "| trace hook | best µs/event | median µs/event | / no hook (best) | / no hook "
        "(median of each round's ratio) |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, values in disp.items():
        paired = statistics.median(v / b for v, b in zip(values, disp["none"], strict=True))
        lines.append(f"| {KINDS[kind]} | {min(values):.2f} | {statistics.median(values):.2f} | "
                     f"{min(values) / base:.2f}x | {paired:.2f}x |")
    lines += [
        "",
        "A round runs each configuration once, one after another (each first in turn), so a "
        "round's ratio compares runs made seconds apart under the same load; the last column "
        "is the median of those.",
        "",
        "`Metrics` is a `convo_fsm.engine.tracing.Tracer`: the engine calls its methods "
        "directly (no `TraceRecord`); an event costs it a few int and dict updates, three "
        "`perf_counter` reads and three list appends (latencies are bucketed in bulk every 256 "
        "events). A plain callable hook gets a `TraceRecord` built for each thing the engine "
        "does (3-4 an event), which alone costs its row; `tee(...)` is such a callable.",
        ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.work/admin.md"))
    parser.add_argument("--results", type=Path, default=None,
                        help="also put the section into this RESULTS.md")
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--skip-pages", action="store_true", help="dispatch rows only")
    parser.add_argument("--redis", metavar="URL", help="also the Redis store rows (a server "
                                                      "to fill with N sessions and clean)")
    args = parser.parse_args()
    args.load = os.getloadavg()
    page_rows = [] if args.skip_pages else asyncio.run(pages(args.sessions, args.reps))
    if not args.skip_store and not args.skip_pages:
        page_rows += asyncio.run(store_pages(args.sessions, args.reps))
    if args.redis and not args.skip_pages:
        page_rows += asyncio.run(redis_pages(args.redis, args.sessions, args.reps))
    disp = asyncio.run(dispatch(10_000, args.events, args.rounds))
    text = render(args, page_rows, disp)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    if args.results is not None:
        old = args.results.read_text(encoding="utf-8")
        section = re.compile(r"^## 8\. Admin pages and metrics\n.*?(?=^## |\Z)", re.S | re.M)
        new = section.sub(lambda _: text + "\n", old) if section.search(old) \
            else old.rstrip("\n") + "\n\n" + text
        args.results.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
