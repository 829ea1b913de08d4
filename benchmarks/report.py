"""RESULTS.md and the PNG plots, from the `results.json` a run saved."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["LABELS", "write"]

Result = dict[str, Any]

LABELS: dict[tuple[str, str, str], str] = {
    ("convo_fsm", "deliver", "route"): "convo_fsm Engine.dispatch",
    ("convo_fsm", "deliver", "direct"): "convo_fsm Engine.deliver",
    ("astrbot", "deliver", "route"): "AstrBot ProcessStage.process",
    ("astrbot", "deliver", "direct"): "AstrBot SessionWaiter.trigger",
    ("compat", "deliver", "route"): "convo_fsm compat session_waiter",
    ("ptb", "deliver", "route"): "PTB ConversationHandler",
    ("convo_fsm", "ordinary", "route"): "convo_fsm Engine.dispatch",
    ("astrbot", "ordinary", "route"): "AstrBot ProcessStage.process",
    ("compat", "ordinary", "route"): "convo_fsm compat session_waiter",
    ("convo-step", "step", ""): "convo_fsm step()",
    ("convo-step-call", "step", ""): "convo_fsm step() in a sub-conversation",
    ("dict-fsm", "step", ""): "dict FSM (same work)",
    ("dict-lookup", "step", ""): "dict lookup only",
    ("transitions", "step", ""): "transitions Machine",
    ("transitions-async", "step", ""): "transitions AsyncMachine",
}
LABELS.update({
    ("aiogram", "deliver", "fsm"): "aiogram FSM (MemoryStorage)",
    ("aiogram", "deliver", "convo"): "convo_fsm via aiogram adapter",
    ("aiogram", "ordinary", "bare"): "aiogram bare dispatch",
    ("aiogram", "ordinary", "fsm"): "aiogram FSM (MemoryStorage)",
    ("aiogram", "ordinary", "convo"): "convo_fsm via aiogram adapter",
    ("nonebot", "deliver", "got"): "NoneBot got",
    ("nonebot", "deliver", "convo"): "convo_fsm via NoneBot adapter",
    ("nonebot", "ordinary", "bare"): "NoneBot bare dispatch",
    ("nonebot", "ordinary", "got"): "NoneBot got",
    ("nonebot", "ordinary", "convo"): "convo_fsm via NoneBot adapter",
})
LABELS.update({
    ("ptb-app", "deliver", "conv"): "PTB ConversationHandler",
    ("ptb-app", "deliver", "convo"): "convo_fsm via PTB adapter",
    ("ptb-app", "ordinary", "bare"): "PTB bare dispatch",
    ("ptb-app", "ordinary", "conv"): "PTB ConversationHandler",
    ("ptb-app", "ordinary", "convo"): "convo_fsm via PTB adapter",
})
FRAMEWORKS = {"aiogram": "fsm", "nonebot": "got", "ptb-app": "conv"}
"""Bot frameworks measured in section 10 (system -> its own conversation tool's mode)."""
PLOTS = ("deliver.png", "ordinary.png", "step.png", "memory.png", "lifecycle.png")


class Index:
    def __init__(self, results: Iterable[Result]) -> None:
        self.ok: dict[tuple[str, str, str, int], Result] = {}
        self.errors: list[Result] = []
        for r in results:
            if "error" in r:
                self.errors.append(r)
            else:
                self.ok[(r["system"], r["workload"], r["mode"], r["size"])] = r

    def get(self, system: str, workload: str, mode: str, size: int) -> Result | None:
        return self.ok.get((system, workload, mode, size))

    def sizes(self, workload: str, system: str | None = None) -> list[int]:
        return sorted({k[3] for k in self.ok if k[1] == workload
                       and (k[0] == system if system else k[0] not in FRAMEWORKS)})

    def series(self, workload: str, system: str | None = None) -> list[tuple[str, str, str]]:
        """The (system, workload, mode) series measured; the frameworks' (section 10) only
        when `system` names one."""
        seen = {(k[0], k[1], k[2]) for k in self.ok if k[1] == workload
                and (k[0] == system if system else k[0] not in FRAMEWORKS)}
        return [k for k in LABELS if k in seen] + sorted(seen - set(LABELS))

    def us(self, system: str, workload: str, mode: str, size: int) -> float | None:
        r = self.get(system, workload, mode, size)
        return None if r is None else float(r["us_per_event"]["median"])


def n_fmt(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def g(x: float | None, digits: int = 3) -> str:
    if x is None or math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    return f"{x:,.{decimals}f}"


def spread(r: Result | None, key: str = "us_per_event", scale: float = 1.0) -> str:
    if r is None:
        return "–"
    s = r[key]
    return f"{g(s['median'] * scale)} ({g(s['min'] * scale)}–{g(s['max'] * scale)})"


def ratio(num: float | None, den: float | None) -> str:
    if num is None or den is None or den == 0:
        return "–"
    return f"{g(num / den)}x"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


# -- sections -------------------------------------------------------------------------------
def per_event_section(ix: Index, workload: str, pairs: list[tuple[tuple[str, str, str],
                                                                  tuple[str, str, str]]],
                      system: str | None = None) -> list[str]:
    """Rows: sizes. Columns: each series' µs/event median (min–max) and events/s, then the
    ratio of each (peer, ours) pair."""
    series = ix.series(workload, system)
    head = ["sessions"] + [f"{LABELS.get(s, s[0])} µs/event (min–max)" for s in series]
    head += [f"{LABELS[p]} / {LABELS[o]}" for p, o in pairs if p in series and o in series]
    rows = []
    for n in ix.sizes(workload, system):
        row = [n_fmt(n)]
        for s in series:
            r = ix.get(s[0], s[1], s[2], n)
            row.append("–" if r is None else
                       f"{spread(r)}; {g(1e6 / r['us_per_event']['median'])} ev/s")
        for p, o in pairs:
            if p in series and o in series:
                row.append(ratio(ix.us(*p, n), ix.us(*o, n)))
        rows.append(row)
    return table(head, rows)


def memory_section(ix: Index) -> list[str]:
    systems = [s for s in ("convo_fsm", "compat", "astrbot")
               if any(k[0] == s and k[1] == "memory" for k in ix.ok)]
    names = {"convo_fsm": "convo_fsm", "compat": "convo_fsm compat", "astrbot": "AstrBot"}
    head = ["sessions"]
    for s in systems:
        head += [f"{names[s]} B/session (tracemalloc)", f"{names[s]} B/session (RSS)",
                 f"{names[s]} tasks/session"]
    if "astrbot" in systems:
        head.append("AstrBot / convo_fsm (tracemalloc)")
    rows = []
    for n in ix.sizes("memory"):
        row = [n_fmt(n)]
        for s in systems:
            tm, rss = ix.get(s, "memory", "tracemalloc", n), ix.get(s, "memory", "rss", n)
            row += [g(tm["bytes_per_session"]) if tm else "–",
                    g(rss["bytes_per_session"]) if rss else "–",
                    g((tm or rss or {}).get("tasks_per_session"))]
        if "astrbot" in systems:
            a, c = ix.get("astrbot", "memory", "tracemalloc", n), ix.get(
                "convo_fsm", "memory", "tracemalloc", n)
            row.append(ratio(a and a["bytes_per_session"], c and c["bytes_per_session"]))
        rows.append(row)
    return table(head, rows)


def lifecycle_section(ix: Index) -> list[str]:
    systems = [s for s in ("convo_fsm", "astrbot", "ptb")
               if any(k[0] == s and k[1] == "lifecycle" for k in ix.ok)]
    names = {"convo_fsm": "convo_fsm", "astrbot": "AstrBot", "ptb": "PTB"}
    head = ["sessions", "measure"] + [f"{names[s]} (min–max)" for s in systems]
    if "astrbot" in systems:
        head.append("AstrBot / convo_fsm")
    rows = []
    what = {"start_s": "start N", "stop_s": "stop N, random order (until all ended)",
            "stop_block_s": "longest event-loop block while stopping",
            "expire_lag_s": "N due at once: last fired, after the deadline",
            "expire_block_s": "longest event-loop block while expiring",
            "expire_late": "sessions that started only after the shared deadline (count)"}
    for n in ix.sizes("lifecycle"):
        for key, label in what.items():
            row = [n_fmt(n), label]
            for s in systems:
                r = ix.get(s, "lifecycle", "", n)
                row.append(spread(r, key) if r is not None and key in r else "–")
            if "astrbot" in systems:
                a = ix.get("astrbot", "lifecycle", "", n)
                c = ix.get("convo_fsm", "lifecycle", "", n)
                row.append(ratio(a and a[key]["median"], c and c[key]["median"])
                           if a and c and key in a and key in c else "–")
            rows.append(row)
    return table(head, rows)


def targets(ix: Index) -> list[str]:
    rows: list[list[str]] = []

    def add(target: str, measured: str, ok: bool | None) -> None:
        rows.append([target, measured, "–" if ok is None else ("met" if ok else "**missed**")])

    conv = ("convo_fsm", "deliver", "route")
    step_sizes = [n for n in ix.sizes("step") if ix.us("convo-step", "step", "", n)
                  and ix.us("dict-fsm", "step", "", n)]
    if step_sizes:
        rs = [ix.us("convo-step", "step", "", n) / ix.us("dict-fsm", "step", "", n)  # type: ignore[operator]
              for n in step_sizes]
        inter = [(n, r["interleaved_ratio_to_dict_fsm"]["median"]) for n in step_sizes
                 if (r := ix.get("convo-step", "step", "", n)) is not None
                 and "interleaved_ratio_to_dict_fsm" in r]
        add("pure step within 4x of a hand-written dict FSM doing the same work",
            ", ".join(f"{g(r)}x at {n_fmt(n)}" for r, n in zip(rs, step_sizes, strict=True)) +
            ("; timed in turn in one process: " +
             ", ".join(f"{g(r)}x at {n_fmt(n)}" for n, r in inter) if inter else ""),
            max(r for _, r in inter) <= 4 if inter else max(rs) <= 4)
    calls = [(n, r["interleaved_ratio_to_top_level"]["median"]) for n in ix.sizes("step")
             if (r := ix.get("convo-step-call", "step", "", n)) is not None
             and "interleaved_ratio_to_top_level" in r]
    if calls:
        add("a step inside a sub-conversation within 1.5x of a top-level step (timed in turn)",
            ", ".join(f"{g(r)}x at {n_fmt(n)}" for n, r in calls),
            max(r for _, r in calls) <= 1.5)
    for name, key in (("delivery to a waiting session", conv),
                      ("an ordinary (non-session) message", ("convo_fsm", "ordinary", "route"))):
        pts = [(n, ix.us(*key, n)) for n in ix.sizes(key[1]) if ix.us(*key, n) is not None]
        live = [v for n, v in pts if n > 0 and v is not None]
        if len(live) >= 2:
            # At 0 sessions dispatch returns before computing any key: cheaper, not slower;
            # flatness is judged where sessions exist.
            lo, hi = min(live), max(live)
            add(f"Engine.dispatch flat across session counts: {name} (max/min over N >= 1 "
                "within 2x)",
                ", ".join(f"{g(v)} µs at {n_fmt(n)}" for n, v in pts) +
                f" (max/min {g(hi / lo)}x)", hi / lo <= 2)
    a, c = ix.us("astrbot", "deliver", "route", 10_000), ix.us(*conv, 10_000)
    if a and c:
        add(">= 10x AstrBot delivery at 10k sessions (real routing path)", f"{g(a / c)}x",
            a / c >= 10)
    a, c = ix.us("astrbot", "ordinary", "route", 10_000), ix.us("convo_fsm", "ordinary", "route",
                                                                  10_000)
    if a and c:
        add(">= 1000x cheaper ordinary message at 10k sessions", f"{g(a / c)}x", a / c >= 1000)
    for n in (100_000, 1_000_000):
        tm, rss = ix.get("convo_fsm", "memory", "tracemalloc", n), ix.get("convo_fsm", "memory",
                                                                          "rss", n)
        if tm or rss:
            vals = [x["bytes_per_session"] for x in (tm, rss) if x]
            add(f"<= 500 B per idle session at {n_fmt(n)}",
                f"{g(tm['bytes_per_session']) if tm else '–'} B (tracemalloc), "
                f"{g(rss['bytes_per_session']) if rss else '–'} B (RSS)", max(vals) <= 500)
    lc = ix.get("convo_fsm", "lifecycle", "", 100_000)
    if lc:
        add("100k random-order stops < 0.5 s", f"{g(lc['stop_s']['median'])} s",
            lc["stop_s"]["median"] < 0.5)
        add("100k timeouts all fired within 1 s of their deadline",
            f"{g(lc['expire_lag_s']['median'])} s", lc["expire_lag_s"]["median"] < 1)
    for fw, own in FRAMEWORKS.items():
        name = {"aiogram": "aiogram", "nonebot": "NoneBot", "ptb-app": "PTB"}[fw]
        both = [(n, c, b) for n in ix.sizes("ordinary", fw)
                if (c := ix.us(fw, "ordinary", "convo", n)) and (b := ix.us(fw, "ordinary", "bare",
                                                                             n))]
        if both:
            add(f"{name} adapter: an ordinary message within 1.5x of {name}'s bare dispatch",
                ", ".join(f"{g(c / b)}x at {n_fmt(n)}" for n, c, b in both),
                max(c / b for _, c, b in both) <= 1.5)
        peer, ours = ix.us(fw, "deliver", own, 10_000), ix.us(fw, "deliver", "convo", 10_000)
        if peer and ours:
            add(f"{name} adapter: delivery faster than {LABELS[(fw, 'deliver', own)]} at 10k",
                f"{g(peer / ours)}x faster ({g(ours)} vs {g(peer)} µs)", peer > ours)
    return table(["target", "measured (medians, same run)", ""], rows)


def frameworks_section(ix: Index) -> list[str]:
    """Section 10: each bot framework's own conversation tool next to convo_fsm's adapter."""
    out: list[str] = []
    intro = {
        "aiogram": (
            "### aiogram 3",
            "Updates through `Dispatcher.feed_update` (aiogram's whole path, its FSM context "
            "middleware included). aiogram's FSM: `/start` sets `Waiting.waiting` in "
            "`MemoryStorage`; a handler filtered on that state sets it again; no timeout "
            "exists to reset. convo_fsm: `Conversations.setup(dp)` (an outer middleware on "
            "`dp.message`), `/start` starts the waiter spec (`KEEP`, async no-op action, 60 s "
            "timeout reset). Bare dispatch: the same bot without conversations (`/start` does "
            "nothing), the reference for the adapter's cost on an ordinary message."),
        "nonebot": (
            "### NoneBot2 (OneBot v11)",
            "Events through `nonebot.message.handle_event` (preprocessors, then every matcher "
            "by priority). NoneBot's `got`: `/start` pauses in `got(\"answer\")`, whose "
            "handler calls `reject()` to wait again: one temporary matcher per waiting user, "
            "checked against every event (only 1k and 10k: at 100k one event would take "
            "minutes). convo_fsm: one event preprocessor for all sessions. Bare dispatch: the "
            "same bot without conversations (an `on_command(\"start\")` that does nothing and "
            "the catch-all matcher)."),
        "ptb-app": (
            "### python-telegram-bot",
            "Updates through `Application.process_update` (every handler group in order), in "
            "this interpreter (section 1's PTB runs in the AstrBot venv). PTB's "
            "`ConversationHandler`: `/start` enters WAITING, a text handler returns WAITING "
            "again, `conversation_timeout=60` (a job queue job rescheduled per update). "
            "convo_fsm: `Conversations(app)`, its routing handler in group -1. Bare dispatch: "
            "the same bot without conversations (a `/start` `CommandHandler` that does "
            "nothing, and the catch-all handler)."),
    }
    for fw, own in FRAMEWORKS.items():
        if not ix.sizes("deliver", fw) and not ix.sizes("ordinary", fw):
            continue
        title, text = intro[fw]
        out += [title, "", text, "", "Delivery to a waiting user:", "",
                *per_event_section(ix, "deliver", [((fw, "deliver", own),
                                                    (fw, "deliver", "convo"))], fw),
                "An ordinary message (from someone not waiting; it reaches the catch-all "
                "handler):", "",
                *per_event_section(ix, "ordinary", [((fw, "ordinary", "convo"),
                                                     (fw, "ordinary", "bare")),
                                                    ((fw, "ordinary", own),
                                                     (fw, "ordinary", "convo"))], fw)]
        head = ["waiting users"] + [f"{LABELS.get((fw, 'ordinary', m), m)} B/user"
                                    for m in ("bare", own, "convo")]
        head += [f"{LABELS[(fw, 'ordinary', own)]} net", "convo_fsm net"]
        rows = []
        bare_at = [n for n in ix.sizes("memory", fw) if ix.get(fw, "memory", "bare", n)]
        for n in ix.sizes("memory", fw):
            vals = {m: (r["bytes_per_session"] if (r := ix.get(fw, "memory", m, n)) else None)
                    for m in ("bare", own, "convo")}
            # Net of the bare bot at the same N, or at the largest N it was measured below.
            below = [b for b in bare_at if b <= n]
            base_r = ix.get(fw, "memory", "bare", below[-1]) if below else None
            base = base_r["bytes_per_session"] if base_r else None
            row = [n_fmt(n)] + [g(vals[m]) for m in ("bare", own, "convo")]
            row += [g(None if base is None or vals[m] is None else vals[m] - base)  # type: ignore[operator]
                    for m in (own, "convo")]
            rows.append(row)
        out += ["Memory per waiting user (tracemalloc, bytes kept after N `/start` messages "
                "were handled and dropped; *net* subtracts what the bare bot keeps per user "
                "who sent a command, at the same N or the largest N below it where the bare "
                "bot was measured):", "", *table(head, rows)]
    return out


def write(run: dict[str, Any], out: Path) -> None:
    ix = Index(run["results"])
    m = run["machine"]
    lines = [
        "# Benchmarks: convo_fsm next to AstrBot, python-telegram-bot, transitions and a dict FSM",
        "",
        "Made by `" + run["command"] + "` (from the repository root; `convo-fsm bench` runs the "
        "same), started " + run["started"] + f", {run.get('duration_s', 0) / 60:.1f} minutes. "
        "Every number below comes from that one run on one machine.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores; {m['os']}. Code: commit "
        f"{m.get('commit', '?')}.",
        f"- Load average before / after the run: {m.get('load_before')} / "
        f"{run.get('load_after', '?')}" + (
            " (other processes were using the CPU: timings are noisier than on an idle "
            "machine; same-run ratios are the figures to read)."
            if max(m.get("load_before") or [0.0]) > 0.5 else ".") + " " + run.get("note", ""),
        f"- convo_fsm, dict FSM, transitions {m.get('transitions')}: Python {m['python']}; "
        f"AstrBot {m.get('astrbot', 'not run')} and python-telegram-bot "
        f"{m.get('python-telegram-bot', 'not run')}: Python {m.get('astrbot_python', '–')}.",
        "- Each cell is one job: a fresh interpreter that builds N live sessions, then times "
        "several repetitions (each at most `budget` seconds or `events` events). Cells show the "
        "median over repetitions and (min–max). One `gc.collect()` after set-up settles its "
        "garbage; GC then runs as each system leaves it (on).",
        "- Ratios are peer / convo_fsm: how many times more time the peer needs.",
        *(f"- Jobs of a later run merged in (their earlier results replaced; every ratio is "
          f"between jobs of one run): `{mr['command']}`, started {mr['started']}, "
          f"{mr.get('duration_s', 0) / 60:.1f} minutes, {mr['jobs']} jobs, on "
          f"{mr['machine'].get('cpu', '?')}, {mr['machine'].get('cores', '?')} cores; commit "
          f"{mr['machine'].get('commit', '?')}; load average before / after "
          f"{mr['machine'].get('load_before')} / {mr.get('load_after', '?')}."
          for mr in run.get("merged", ())),
        "",
        "## Targets",
        "",
        *targets(ix),
        "## 1. Delivery to a waiting session",
        "",
        "N sessions wait; each event comes from one of them (random) and the handler keeps the "
        "session for 60 s more (AstrBot: `controller.keep(60, reset_timeout=True)`; convo_fsm: "
        "a `KEEP` transition, timeout reset, async handler). Through each system's routing path "
        "(convo_fsm `Engine.dispatch`; AstrBot `ProcessStage.process`, where it routes to "
        "waiters) and directly (`Engine.deliver(key, event)`; `SessionWaiter.trigger`). Events "
        "are built before timing; the loop gets a turn every 100 events, so the timer tasks "
        "AstrBot creates per `keep` run inside the timed window.",
        "",
        *per_event_section(ix, "deliver", [
            (("astrbot", "deliver", "route"), ("convo_fsm", "deliver", "route")),
            (("astrbot", "deliver", "direct"), ("convo_fsm", "deliver", "direct")),
            (("ptb", "deliver", "route"), ("convo_fsm", "deliver", "route")),
            (("compat", "deliver", "route"), ("convo_fsm", "deliver", "route"))]),
        "![delivery](deliver.png)",
        "",
        "## 2. An ordinary message while N sessions wait",
        "",
        "A message from someone with no session, through the same routing path: convo_fsm "
        "computes one key per filter kind and looks it up (`dispatch` returns False and the host "
        "hands the message to its ordinary handlers); AstrBot's `ProcessStage.process` asks "
        "every waiting session's filter, then runs its ordinary (here empty) handling.",
        "",
        *per_event_section(ix, "ordinary", [
            (("astrbot", "ordinary", "route"), ("convo_fsm", "ordinary", "route")),
            (("compat", "ordinary", "route"), ("convo_fsm", "ordinary", "route"))]),
        "![ordinary messages](ordinary.png)",
        "",
        "## 3. Memory per idle waiting session",
        "",
        "Bytes added per session, measured from just before the N sessions start to just after "
        "(after `gc.collect()`), with tracemalloc (Python allocations) and RSS (separate jobs). "
        "Start events are built before the baseline; the session key is computed inside the "
        "window. AstrBot's session includes the plugin's coroutine awaiting `waiter(event)` (a "
        "task) and its `keep` timer task; convo_fsm's an empty data dict and one heap entry.",
        "",
        *memory_section(ix),
        "![memory](memory.png)",
        "",
        "## 4. Starting, stopping in random order, N timeouts at once",
        "",
        "Start N sessions; stop them all in random order (AstrBot: `controller.stop()`; "
        "convo_fsm: `Engine.stop`; time until every session has ended, i.e. every plugin's "
        "`await waiter(event)` returned); start N again with all deadlines at one instant "
        "(AstrBot: each waiter's timeout computed to end then; convo_fsm: `Engine.set_deadline`; "
        "PTB: `conversation_timeout`, deadlines spread over the start, lag from the last one) "
        "and time from that instant until the last has fired. A 1 ms ticker measures the "
        "longest stretch the event loop was blocked.",
        "",
        *lifecycle_section(ix),
        "![lifecycle](lifecycle.png)",
        "",
        "## 6. The pure step against transitions and a dict FSM",
        "",
        "One `message` event applied to one of N conversations, no engine: find the transition, "
        "run the no-op handler, restart the 60 s timeout. `convo_fsm step()` builds an `Input` "
        "and returns a new immutable `Session` (a named tuple) and its effects; the dict FSM "
        "mutates a dict record and returns an effect list (same work); `dict lookup only` is "
        "`state = "
        "TABLE[state][event]`; transitions: one `Machine`/`AsyncMachine` per session (an "
        "internal transition with an `after` callback).",
        "",
        *per_event_section(ix, "step", [
            (("convo-step", "step", ""), ("dict-fsm", "step", "")),
            (("convo-step-call", "step", ""), ("convo-step", "step", "")),
            (("transitions", "step", ""), ("convo-step", "step", "")),
            (("transitions-async", "step", ""), ("convo-step", "step", ""))]),
        *step_create(ix),
        "![step](step.png)",
        "",
    ]
    stores = out / "storage.md"
    if stores.exists():  # written by benchmarks.storage_bench --out (a separate command)
        lines += ["## 7. Stores", "",
                  "An engine with no store, the memory, SQLite and Redis stores (each step "
                  "committed inside the event's latency); several worker processes on one "
                  "Redis are section 11.", "",
                  stores.read_text(encoding="utf-8").rstrip(), ""]
    admin = out / "admin.md"
    if admin.exists():  # section 8, written by benchmarks.admin_bench (a separate command)
        lines += [admin.read_text(encoding="utf-8").rstrip(), ""]
    fleet = out / "fleet.md"
    if fleet.exists():  # section 11, written by benchmarks.fleet_bench --out
        lines += [fleet.read_text(encoding="utf-8").rstrip(), ""]
    faults = out / "fleet_faults.md"
    if faults.exists():  # the fault-injection suite's figures (tests/distributed)
        lines += [faults.read_text(encoding="utf-8").rstrip(), ""]
    lines += astrbot_plugins_section(out)
    fw = frameworks_section(ix)
    if fw:
        lines += ["## 10. Inside bot frameworks: their own conversation tools and convo_fsm's "
                  "adapters", "", *fw]
    engine = out / "engine.md"
    if engine.exists():  # section 12, written by benchmarks.engine_bench (a separate command)
        lines += [engine.read_text(encoding="utf-8").rstrip(), ""]
    if ix.errors:
        lines += ["## Jobs that failed", ""]
        lines += [f"- `{e['job']['module']} {e['job']['workload']} {e['job']['mode']} "
                  f"n={e['job']['size']}`: {e['error']}" for e in ix.errors]
        lines.append("")
    lines += run.get("skipped", [])
    (out / "RESULTS.md").write_text("\n".join(lines).rstrip() + "\n")
    plots(ix, out)


ASTRBOT_SECTION = "## 9. AstrBot plugins: AstrBot's own waiter, the adapter, the compat layer"


def astrbot_plugins_section(out: Path) -> list[str]:
    """The table benchmarks.astrbot_bench --out writes (a separate command), if there."""
    table = out / "astrbot.md"
    if not table.exists():
        return []
    return [ASTRBOT_SECTION, "",
            "One plugin workload three ways in one Python 3.12 venv with real AstrBot 4.29.3: "
            "AstrBot's `session_waiter`; the plugin with its one import changed to "
            "`convo_fsm.adapters.astrbot`, routed by AstrBot's own `ProcessStage` (which asks "
            "convo_fsm's router); and `convo_fsm.compat.astrbot` (what PluginHost runs, "
            "`Runtime.dispatch`). N sessions wait, each a plugin task awaiting `waiter(event)` "
            "whose handler calls `keep(3600, reset_timeout=True)`.", "",
            table.read_text(encoding="utf-8").rstrip(), ""]


def step_create(ix: Index) -> list[str]:
    rows = []
    for s in ix.series("step"):
        for n in ix.sizes("step"):
            r = ix.get(s[0], "step", "", n)
            if r is not None and n >= 1000:
                rows.append([LABELS.get(s, s[0]), n_fmt(n), g(r["create_us"]),
                             g(r["rss_per_session"])])
    return ["Creating the sessions (same jobs):", "",
            *table(["system", "sessions", "µs per session created", "RSS bytes per session"],
                   rows)]


# -- plots ------------------------------------------------------------------------------------
def plots(ix: Index, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def per_event(workload: str, title: str, name: str) -> None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
        for s in ix.series(workload):
            pts = [(n, ix.get(s[0], s[1], s[2], n)) for n in ix.sizes(workload) if n > 0]
            pts2 = [(n, r) for n, r in pts if r is not None]
            if not pts2:
                continue
            xs = [n for n, _ in pts2]
            med = [r["us_per_event"]["median"] for _, r in pts2]
            lo = [r["us_per_event"]["min"] for _, r in pts2]
            hi = [r["us_per_event"]["max"] for _, r in pts2]
            label = LABELS.get(s, s[0])
            ax1.plot(xs, [1e6 / v for v in med], marker="o", label=label)
            ax2.errorbar(xs, med, yerr=[[m - a for m, a in zip(med, lo, strict=True)],
                                        [b - m for m, b in zip(med, hi, strict=True)]],
                         marker="o", capsize=3, label=label)
        for ax, ylabel in ((ax1, "events per second"), (ax2, "µs per event (median, min–max)")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("live sessions")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
        if ax2.get_legend_handles_labels()[0]:
            ax2.legend(fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)

    per_event("deliver", "Delivery to a waiting session (handler keeps it 60 s)", "deliver.png")
    per_event("ordinary", "An ordinary message while N sessions wait", "ordinary.png")
    per_event("step", "One event, no engine: pure step vs dict FSM vs transitions", "step.png")

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for color, (s, name) in enumerate((("convo_fsm", "convo_fsm"), ("compat", "convo_fsm compat"),
                                       ("astrbot", "AstrBot"))):
        for mode in ("tracemalloc", "rss"):
            pts = [(n, ix.get(s, "memory", mode, n)) for n in ix.sizes("memory")]
            pts2 = [(n, r["bytes_per_session"]) for n, r in pts if r is not None]
            if pts2:
                ax.plot(*zip(*pts2, strict=True), marker="o" if mode == "rss" else "s",
                        label=f"{name} ({mode})", color=f"C{color}",
                        linestyle="-" if mode == "tracemalloc" else "--")
    ax.axhline(500, color="grey", linestyle=":", label="target 500 B")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle sessions")
    ax.set_ylabel("bytes per session")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Memory per idle waiting session")
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=100)
    plt.close(fig)

    keys = (("start_s", "start N sessions"), ("stop_s", "stop N in random order"),
            ("expire_lag_s", "N due at once: lag of the last"))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for s, name in (("convo_fsm", "convo_fsm"), ("astrbot", "AstrBot"), ("ptb", "PTB")):
            pts = [(n, ix.get(s, "lifecycle", "", n)) for n in ix.sizes("lifecycle")]
            pts2 = [(n, max(r[key]["median"], 1e-5)) for n, r in pts if r is not None]
            if pts2:
                ax.plot(*zip(*pts2, strict=True), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sessions")
        ax.set_ylabel("seconds")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "lifecycle.png", dpi=100)
    plt.close(fig)

