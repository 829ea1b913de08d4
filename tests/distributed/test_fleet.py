"""The fleet in one process against a real redis-server: the Engine contract through a host,
fencing, partitions and the shared clock. One regression test per fault the old per-key-lock
worker had (issue 13's "Why"); the multi-process faults are in test_fleet_faults.py (slow)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from call_specs import PARENT
from fleet_harness import until

from convo_fsm import KEEP, STOP, Busy, Context, Message, On, Reply, Spec, State, Timeout
from convo_fsm.engine import SessionExists
from convo_fsm.storage import StoreError
from convo_fsm.storage.fleet import FleetHost, FleetWorker, SharedClock, decode, encode
from convo_fsm.storage.partition import Layout, assign, owner, partition_of

aioredis = pytest.importorskip("redis.asyncio")

PARTS = 4
WAIT = 30.0


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    c = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield c
    await c.aclose()


class Fleet:
    """Workers and a host on one prefix, closed at the end of the test."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self.workers: list[FleetWorker] = []
        self.replies: list[Reply] = []
        self.host = FleetHost(client, prefix=prefix, partitions=PARTS, send=self.replies.append,
                              timeout=WAIT)

    async def worker(self, specs: list[Spec], **kw: Any) -> FleetWorker:
        kw.setdefault("lease", 1.0)
        kw.setdefault("poll", 0.01)
        w = FleetWorker(self.client, specs, prefix=self.prefix, partitions=PARTS,
                        worker_id=f"w{len(self.workers) + 1}", **kw)
        await w.start()
        self.workers.append(w)
        return w

    async def settled(self) -> None:
        """Until every partition is owned by exactly one of the live workers."""
        def done() -> bool:
            owned = [p for w in self.workers if not w._stopping for p in w.owned()]
            return sorted(owned) == list(range(PARTS))
        await until(done, WAIT, "every partition owned once")

    async def close(self) -> None:
        await self.host.close()
        for w in self.workers:
            await w.drain(timeout=2.0)


@pytest.fixture
async def fleet(client: Any, prefix: str) -> AsyncIterator[Fleet]:
    f = Fleet(client, prefix)
    await f.host.open()
    yield f
    await f.close()


async def stored(client: Any, prefix: str, key: str) -> dict[str, Any] | None:
    body = await client.hget(Layout(prefix, PARTS).part(partition_of(key, PARTS), "s"), key)
    return None if body is None else dict(json.loads(body.split("\t", 2)[2])["data"])


def tally(action: Callable[[Context], Any] | None = None, **spec_kw: Any) -> Spec:
    def record(ctx: Context) -> None:
        ctx.data.setdefault("seen", []).append(ctx.text)
        ctx.reply(f"got {ctx.text}")

    return Spec("tally", "on", [State("on", on=[On("message", KEEP, action=action or record)])],
                any_state=[On("exit", STOP)], **spec_kw)


# -- pure parts -------------------------------------------------------------------------------
def test_partitions_are_stable_and_rendezvous_moves_only_what_must_move() -> None:
    assert partition_of("platform:user:42", 256) == partition_of("platform:user:42", 256)
    assert {partition_of(f"k{i}", 8) for i in range(200)} == set(range(8))
    before = assign(256, ["a", "b", "c"])
    after = assign(256, ["a", "b", "c", "d"])
    moved = {p for w in "abc" for p in before[w] - after[w]}
    assert moved == after["d"]  # a join takes partitions only for itself...
    assert 30 < len(moved) < 100  # ...about a quarter of them
    gone = assign(256, ["a", "c", "d"])
    assert all(before["a"] - {p for p in before["a"] if owner(p, ["a", "c", "d"]) != "a"}
               <= gone["a"] for _ in [0])
    assert {p for w in "cd" for p in after[w] - gone[w]} == set()  # a leave moves only its own
    assert owner(3, []) is None


def test_a_partitions_keys_share_one_cluster_slot() -> None:
    from redis.crc import key_slot

    layout = Layout("bot:", 256)
    for p in (0, 17, 255):
        names = ["lease", "fence", "ev", "rev", "s", "out", "journal"]
        assert len({key_slot(layout.part(p, n).encode()) for n in names}) == 1
    assert key_slot(layout.part(1, "ev").encode()) != key_slot(layout.part(2, "ev").encode())
    with pytest.raises(ValueError, match="braces"):
        Layout("a{b}:", 4)
    with pytest.raises(ValueError, match="partitions"):
        Layout("a:", 0)


def test_events_travel_as_json() -> None:
    m = Message("你好 /x", sender="bob", group="g1", platform="qq")
    assert decode(encode(m)) == m
    assert decode(encode("plain")) == "plain"
    assert decode(encode('["t", "x"]')) == '["t", "x"]'  # a str that looks like an encoding
    with pytest.raises(Exception, match="Messages or strs"):
        encode(42)


# -- the Engine contract through a host -------------------------------------------------------
async def test_events_nobody_consumes_are_handed_back_not_swallowed(fleet: Fleet) -> None:
    # The old per-key-lock worker's dispatch returned True once an event was queued: a /start
    # queued behind /exit was discarded. Now the host gets the Engine's answer.
    gate = asyncio.Event()

    async def leaving(ctx: Context) -> None:
        await gate.wait()

    spec = Spec("tally", "on", [State("on", on=[On("message", KEEP)])],
                any_state=[On("exit", STOP, action=leaving)])
    await fleet.worker([spec])
    await fleet.settled()
    assert await fleet.host.dispatch(Message("hi", "u1")) is False  # no session on its keys
    assert await fleet.host.start("tally", "k") is True
    with pytest.raises(SessionExists):
        await fleet.host.start("tally", "k")
    exiting = asyncio.ensure_future(fleet.host.deliver("k", "/exit"))
    await until(lambda: fleet.workers[0].engine is not None
                and "k" in fleet.workers[0].engine.busy_keys(), WAIT, "the exit action")
    start = asyncio.ensure_future(fleet.host.deliver("k", "/start"))
    await until(lambda: fleet.workers[0].engine is not None
                and fleet.workers[0].engine.footprint()["busy"].get("k") == 1, WAIT,
                "/start queued behind /exit")
    gate.set()
    assert await exiting is True
    assert await start is False  # handed back: the host gives it to its other handlers
    assert await fleet.host.deliver("k", "late") is False


async def test_a_call_nobody_answers_raises_after_its_timeout(client: Any, prefix: str) -> None:
    host = FleetHost(client, prefix=prefix, partitions=PARTS, timeout=0.3)
    await host.open()
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match=r"no worker answered .* within 0\.3 s"):
            await asyncio.wait_for(host.deliver("k", "x"), WAIT)
        assert time.monotonic() - t0 >= 0.3  # never before its timeout
        assert not host._due and not host._waiting  # nothing left behind
        stream = Layout(prefix, PARTS).part(partition_of("k", PARTS), "ev")
        assert await client.xlen(stream) == 1  # the event stays queued for a worker
    finally:
        await host.close()


async def test_busy_policies_and_queue_limit_hold(fleet: Fleet) -> None:
    gate = asyncio.Event()

    async def slow(ctx: Context) -> None:
        await gate.wait()

    dropper = Spec("drop", "on", [State("on", on=[On("message", KEEP, action=slow)])],
                   any_state=[On("exit", STOP)], busy=Busy.DROP, busy_reply="busy!")
    queued = Spec("queue", "on", [State("on", on=[On("message", KEEP, action=slow)])],
                  any_state=[On("exit", STOP)], queue_limit=2)
    await fleet.worker([dropper, queued])
    await fleet.settled()
    await fleet.host.start("drop", "d")
    await fleet.host.start("queue", "q")
    first = asyncio.ensure_future(fleet.host.deliver("d", "one"))
    engine = fleet.workers[0].engine
    assert engine is not None
    await until(lambda: "d" in engine.busy_keys(), WAIT, "d busy")
    assert await fleet.host.deliver("d", "two") is True  # consumed by the DROP policy...
    assert [r.text for r in fleet.replies if r.to == "d"] == ["busy!"]  # ...with its reply
    running = asyncio.ensure_future(fleet.host.deliver("q", "a"))
    await until(lambda: "q" in engine.busy_keys(), WAIT, "q busy")
    waiting = [asyncio.ensure_future(fleet.host.deliver("q", t)) for t in ("b", "c")]
    await until(lambda: engine.footprint()["busy"].get("q") == 2, WAIT, "two queued")
    assert await fleet.host.deliver("q", "d") is False  # queue_limit=2: handed back
    gate.set()
    assert await first and await running and all(await asyncio.gather(*waiting))


async def test_concurrent_delivers_for_one_key_apply_in_arrival_order(fleet: Fleet,
                                                                      client: Any) -> None:
    await fleet.worker([tally()])
    await fleet.settled()
    await fleet.host.start("tally", "k")
    texts = [f"m{i}" for i in range(40)]
    got = await asyncio.gather(*(fleet.host.deliver("k", t) for t in texts))
    assert all(got)
    data = await stored(client, fleet.prefix, "k")
    assert data is not None and data["seen"] == texts
    assert [r.text for r in fleet.replies if r.to == "k"] == [f"got {t}" for t in texts]


async def test_a_hung_action_does_not_keep_its_key_and_its_timeout_fires(fleet: Fleet,
                                                                         client: Any) -> None:
    async def hang(ctx: Context) -> None:
        await asyncio.Event().wait()

    def fired(ctx: Context) -> None:
        ctx.data["fired"] = True
        ctx.reply("timed out")

    spec = Spec("hang", "on", [
        State("on", on=[On("message", KEEP, action=hang, reset_timeout=False)],
              timeout=Timeout(0.3, "after", action=fired)),
        State("after", on=[On("message", KEEP)]),
    ], any_state=[On("exit", STOP)])
    await fleet.worker([spec])
    await fleet.settled()
    await fleet.host.start("hang", "h")
    assert await fleet.host.deliver("h", "stuck") is True  # answered once the timeout cut it
    await until(lambda: any(r.text == "timed out" for r in fleet.replies), WAIT, "the timeout")
    assert await fleet.host.deliver("h", "next") is True  # the key is free again
    data = await stored(client, fleet.prefix, "h")
    assert data == {"fired": True}


async def test_a_warning_due_during_downtime_is_not_sent_after_the_deadline(
        fleet: Fleet, client: Any) -> None:
    def warn(ctx: Context) -> None:
        ctx.reply("hurry")

    def over(ctx: Context) -> None:
        ctx.reply("over")

    spec = Spec("warned", "on", [
        State("on", on=[On("message", KEEP)],
              timeout=Timeout(0.4, STOP, action=over, warn_before=0.3, warn=warn))])
    first = await fleet.worker([spec])
    await fleet.settled()
    await fleet.host.start("warned", "w")
    await first.drain()  # down before the warning is due
    deadline = time.monotonic() + 0.5
    await until(lambda: time.monotonic() > deadline, WAIT, "the deadline to pass")
    await fleet.worker([spec])
    await until(lambda: any(r.text == "over" for r in fleet.replies), WAIT, "the timeout")
    assert [r.text for r in fleet.replies if r.to == "w"] == ["over"]
    assert await stored(client, fleet.prefix, "w") is None


async def test_replies_nobody_reads_are_bounded(client: Any, prefix: str) -> None:
    def fired(ctx: Context) -> None:
        ctx.reply("fired")

    spec = Spec("t", "on", [State("on", on=[On("message", KEEP)],
                                  timeout=Timeout(0.01, STOP, action=fired))])
    f = Fleet(client, prefix)
    f.host._use_outbox = False  # a host that only feeds events: nobody reads the outbox
    await f.host.open()
    outbox = Layout(prefix, PARTS).outbox
    try:
        await f.worker([spec], outbox_max=10)
        await f.settled()
        for i in range(30):  # one at a time: each timer's reply is its own commit's entry
            await f.host.start("t", f"k{i}")

            async def gone(key: str = f"k{i}") -> bool:
                return await stored(client, prefix, key) is None

            await until(gone, WAIT, "the timeout")
        w = f.workers[0]
        await until(lambda: not w._flush_lock.locked()
                    and not any(p.results for p in w._parts.values()), WAIT, "the last commit")
        info = await client.xinfo_stream(outbox)
        assert info["entries-added"] > 10  # more were written...
        assert await client.xlen(outbox) == 10  # ...than are kept
        kept = [json.loads(f["b"]) for _, f in await client.xrange(outbox)]
        assert all(item[1]["r"] == [[item[1]["r"][0][0], "fired"]] for e in kept for item in e)
    finally:
        await f.close()


# -- fencing ----------------------------------------------------------------------------------
async def test_a_worker_that_lost_its_lease_changes_nothing(fleet: Fleet, client: Any) -> None:
    # Split brain: a worker paused past its lease resumes and commits. Here its lease is
    # taken from under it while an action runs; its commit, journal note and reads are
    # refused; once the partition is free again it takes it back with a new token and handles
    # the event exactly once.
    gate = asyncio.Event()
    w: FleetWorker | None = None

    async def slow(ctx: Context) -> None:
        if ctx.text == "paused":
            await gate.wait()
        ctx.data.setdefault("seen", []).append(ctx.text)

    w = await fleet.worker([tally(slow)], lease=30.0, tick=0.05)
    await fleet.settled()
    await fleet.host.start("tally", "k")
    assert await fleet.host.deliver("k", "before")
    layout = Layout(fleet.prefix, PARTS)
    lease = layout.part(partition_of("k", PARTS), "lease")
    token = w.token("k")
    pending = asyncio.ensure_future(fleet.host.deliver("k", "paused"))
    assert w.engine is not None
    await until(lambda: "k" in w.engine.busy_keys(), WAIT, "the action")
    await client.set(lease, "999|intruder")  # another owner now (as after an expiry)
    assert await w.journal("k", "note") is False
    gate.set()
    await until(lambda: partition_of("k", PARTS) not in w.owned(), WAIT,
                "the worker to notice it lost the partition")
    assert (await stored(client, fleet.prefix, "k")) == {"seen": ["before"]}
    assert not pending.done()  # no answer from a worker that cannot commit
    await client.delete(lease)  # the intruder's lease ends: ours to take again
    assert await pending is True
    assert (await stored(client, fleet.prefix, "k")) == {"seen": ["before", "paused"]}
    new = w.token("k")
    assert token is not None and new is not None and new > token


async def test_an_action_that_lost_its_cancellation_does_not_block_its_key(
        fleet: Fleet, client: Any) -> None:
    # The fault suite's stall under load: a worker resumed after losing its lease while an
    # action was inside a Redis call; the call returned normally although the Engine's
    # cancellation had come meanwhile (absorbed), and the action waited on, forever (its lease
    # gone). It kept its key's turn, so when the partition came back to that worker the event
    # re-read from the pending list, and every later one of that key, queued behind it
    # unanswered. Here the action absorbs the first cancellation itself.
    entered = asyncio.Event()
    runs: list[str] = []

    async def stubborn(ctx: Context) -> None:
        runs.append(ctx.text)
        if ctx.text == "stuck" and runs.count("stuck") == 1:
            entered.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # the cancellation is absorbed here
            await asyncio.Event().wait()  # and it goes on waiting (cancelled again: ends)
        ctx.data.setdefault("seen", []).append(ctx.text)

    w = await fleet.worker([tally(stubborn)], lease=0.5, tick=0.05)
    await fleet.settled()
    await fleet.host.start("tally", "k")
    assert await fleet.host.deliver("k", "before")
    lease = Layout(fleet.prefix, PARTS).part(partition_of("k", PARTS), "lease")
    pending = asyncio.ensure_future(fleet.host.deliver("k", "stuck"))
    await asyncio.wait_for(entered.wait(), WAIT)
    await client.set(lease, "999|intruder")  # the lease is lost while the action runs
    await until(lambda: partition_of("k", PARTS) not in w.owned(), WAIT,
                "the worker to notice it lost the partition")
    await client.delete(lease)  # free again: the same worker takes it back
    # The pending event is handled again, once, and the key takes later events.
    assert await pending is True
    assert await fleet.host.deliver("k", "after") is True
    assert (await stored(client, fleet.prefix, "k")) == {"seen": ["before", "stuck", "after"]}
    assert runs == ["before", "stuck", "stuck", "after"]
    assert w.engine is not None and "k" not in w.engine.busy_keys()


async def test_a_key_kept_busy_by_short_events_stays_with_one_worker(fleet: Fleet,
                                                                     client: Any) -> None:
    # The old per-key lock expired under a key kept busy by many short events (61 of 1,457
    # acknowledged events lost with a 0.3 s TTL): leases are per partition and renewed by the
    # owner whatever its keys do.
    errors: list[BaseException] = []
    for _ in range(2):
        await fleet.worker([tally()], lease=0.3, on_error=lambda k, e: errors.append(e))
    await fleet.settled()
    await fleet.host.start("tally", "busy")
    sent = []
    end = time.monotonic() + 1.5  # several lease lengths
    i = 0
    while time.monotonic() < end:
        batch = [f"e{i + j}" for j in range(10)]
        assert all(await asyncio.gather(*(fleet.host.deliver("busy", t) for t in batch)))
        sent += batch
        i += 10
    data = await stored(client, fleet.prefix, "busy")
    assert data is not None and data["seen"] == sent
    assert errors == []
    assert sum(w.lost for w in fleet.workers) == 0


async def test_a_replayed_event_is_not_applied_twice(fleet: Fleet, client: Any) -> None:
    # At-least-once delivery: an event committed but not acknowledged comes again after a
    # takeover; the session's last applied event id makes the new owner skip it.
    w = await fleet.worker([tally()])
    await fleet.settled()
    await fleet.host.start("tally", "k")
    assert await fleet.host.deliver("k", "once")
    layout = Layout(fleet.prefix, PARTS)
    p = partition_of("k", PARTS)
    eid = await client.hget(layout.part(p, "s"), "k")
    last = eid.split("\t")[1]
    # Hand the same event in again, as a new owner does when the acknowledgement was lost
    # after the commit: first after a takeover (the last applied id comes from the record).
    entries = await client.xrange(layout.part(p, "ev"), last, last)
    assert entries, "the last acknowledged event stays in the stream"
    fields = [x for kv in entries[0][1].items() for x in kv]
    part = w._parts[p]
    await w._lose(part)
    await until(lambda: p in w.owned(), WAIT, "the takeover")
    w._begin(part, last, fields)
    await until(lambda: w.duplicates == 1, WAIT, "the replay to be skipped")
    assert await fleet.host.deliver("k", "after")
    assert (await stored(client, fleet.prefix, "k")) == {"seen": ["once", "after"]}
    assert w.duplicates >= 1


# -- one time base ----------------------------------------------------------------------------
async def test_a_skewed_worker_times_by_the_shared_clock(fleet: Fleet, client: Any) -> None:
    # A worker whose own clock is 30 s fast used to end 60 s sessions at 31 s.
    def fired(ctx: Context) -> None:
        ctx.data["at"] = ctx.now
        ctx.reply("fired")

    def armed(ctx: Context) -> None:
        ctx.data["due"] = ctx.session.deadline

    spec = Spec("t", "on", [State("on", enter=armed, on=[On("message", KEEP)],
                                  timeout=Timeout(0.5, "done", action=fired)),
                            State("done", on=[On("message", KEEP)])],
                any_state=[On("exit", STOP)])
    w = await fleet.worker([spec], skew=30.0)
    await fleet.settled()
    assert w.clock is not None
    sec, usec = await client.time()
    assert abs(w.clock.now() - (sec + usec / 1e6)) < 0.5  # the server's time, not ours + 30
    assert abs(w.clock.local() - w.clock.now()) > 1.0
    assert await fleet.host.start("t", "k")
    await until(lambda: any(r.text == "fired" for r in fleet.replies), WAIT, "the timeout")
    data = await stored(client, fleet.prefix, "k")
    assert data is not None and 0 <= data["at"] - data["due"] < 1.0


async def test_shared_clock_offset_is_measured(client: Any) -> None:
    clock = await SharedClock.measure(client, skew=-30.0)
    sec, usec = await client.time()
    assert abs(clock.now() - (sec + usec / 1e6)) < 0.5


async def test_an_idle_worker_is_woken_by_an_event_not_by_polling(fleet: Fleet,
                                                                   client: Any) -> None:
    # poll=120 s: a worker that found events only by looking again after `poll` would leave
    # each of these calls unanswered past the host's timeout (30 s), and the first one too,
    # if taking its partitions did not wake its reader.
    w = await fleet.worker([tally()], poll=120.0)
    await fleet.settled()
    assert await fleet.host.start("tally", "k")
    for i in range(5):  # one at a time: the worker is idle, waiting, before each
        assert await fleet.host.deliver("k", f"m{i}")
    assert (await stored(client, fleet.prefix, "k")) == {"seen": [f"m{i}" for i in range(5)]}
    assert w.events == 6


async def test_a_reader_that_fails_unexpectedly_goes_on(fleet: Fleet, client: Any,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    w = await fleet.worker([tally()])
    await fleet.settled()
    assert await fleet.host.start("tally", "k")
    real = w._read_batch
    failures = []

    async def broken(parts: Any, **kw: Any) -> Any:
        if not failures:
            failures.append(1)
            raise RuntimeError("a bug in reading")
        return await real(parts, **kw)

    w._read_batch = broken  # type: ignore[method-assign]
    assert await fleet.host.deliver("k", "after the failure")  # read again, answered
    assert failures == [1] and "reading failed; going on" in caplog.text
    assert (await stored(client, fleet.prefix, "k")) == {"seen": ["after the failure"]}


async def test_batching_keeps_round_trips_per_event_low(fleet: Fleet) -> None:
    w = await fleet.worker([tally()])
    await fleet.settled()
    keys = [f"k{i}" for i in range(50)]
    await asyncio.gather(*(fleet.host.start("tally", k) for k in keys))
    before = w.round_trips
    events_before = w.events
    assert all(await asyncio.gather(*(fleet.host.deliver(k, f"m{j}") for k in keys
                                      for j in range(10))))
    per_event = (w.round_trips - before) / (w.events - events_before)
    assert per_event < 1.0, per_event


# -- what the old per-key-lock worker's own tests covered, on the fleet -------------------
async def test_two_workers_fire_each_timeout_once(fleet: Fleet, client: Any) -> None:
    def fired(ctx: Context) -> None:
        ctx.data["fired"] = ctx.data.get("fired", 0) + 1
        ctx.reply("fired")

    spec = Spec("t", "on", [State("on", on=[On("message", KEEP)],
                                  timeout=Timeout(0.05, "timed", action=fired)),
                            State("timed", on=[On("message", KEEP)])],
                any_state=[On("exit", STOP)])
    for _ in range(2):
        await fleet.worker([spec])
    await until(lambda: all(w.owned() for w in fleet.workers)
                and sum(len(w.owned()) for w in fleet.workers) == PARTS, WAIT,
                "both workers owning partitions")  # (rendezvous: w1 and w2 share 4)
    keys = [f"t{i}" for i in range(12)]
    assert all(await asyncio.gather(*(fleet.host.start("t", k) for k in keys)))

    async def all_fired() -> bool:
        got = [await stored(client, fleet.prefix, k) for k in keys]
        return all(d is not None and d.get("fired") for d in got)

    await until(all_fired, WAIT, "every timeout")
    for k in keys:
        assert await stored(client, fleet.prefix, k) == {"fired": 1}
    await until(lambda: len([r for r in fleet.replies if r.text == "fired"]) >= len(keys), WAIT,
                "the timer replies through the outbox")
    assert sorted(r.to for r in fleet.replies if r.text == "fired") == sorted(keys)  # once each


async def test_a_running_child_moves_with_its_partition(fleet: Fleet, client: Any) -> None:
    # Sub-conversations (issue 14): the stack lives in the session's data, so the next owner
    # steps the running child and its ending.
    first = await fleet.worker([PARENT])
    await fleet.settled()
    assert await fleet.host.start("counter-parent", "k")
    for i in range(3):
        assert await fleet.host.deliver("k", f"m{i}")
    await first.drain()
    second = await fleet.worker([PARENT])
    await fleet.settled()
    for i in range(3, 6):
        assert await fleet.host.deliver("k", f"m{i}")
    assert await fleet.host.deliver("k", "/done")
    assert [r.text for r in fleet.replies] == [f"child {i}" for i in range(1, 7)] + [
        "parent got {'n': 6}"]
    assert second.events == 4 and first.events == 4  # each stepped it (start + 3 events)
