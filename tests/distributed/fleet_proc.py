"""A fleet worker process for the fault-injection tests (run as a subprocess, not collected).

    python fleet_proc.py URL PREFIX PARTITIONS WORKER_ID [--lease S] [--cluster]

The clock skew comes from the CONVO_FSM_FAKE_SKEW environment variable (seconds this worker's
local clock is off). Specs:

- `tally`: every message is recorded in `data["seen"]` by an async action that notes
  `enter` and `exit` in the partition's fenced journal (`FleetWorker.journal`) and, for a text
  ending in `:slow`, sleeps a little in between (a worker to kill mid-action);
- `timer`: its state times out after `data`-independent TIMER seconds; the timeout action
  records `fired` (a count) and `fired_at` (the shared clock's time), and replies `fired`.
  The enter action records `due` (the session's deadline).

Prints `ready WORKER_ID` once its loops run, `figures {...}` after a drain (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys

import redis.asyncio as aioredis

from convo_fsm import KEEP, STOP, Context, On, Spec, State, Timeout
from convo_fsm.storage import StoreError
from convo_fsm.storage.fleet import FleetWorker, serve

TIMER = 1.5
WORKER: FleetWorker | None = None


async def _note(ctx: Context, what: str) -> None:
    assert WORKER is not None
    for _ in range(500):  # Redis away (restarting): try again, as a real action would
        try:
            ok = await WORKER.journal(ctx.key, f"{what} {ctx.text}")
        except StoreError:
            await asyncio.sleep(0.02)
            continue
        if ok:
            return
        break
    await asyncio.Event().wait()  # the lease is gone: stop here (the worker cancels this)


async def record(ctx: Context) -> None:
    await _note(ctx, "enter")
    if ctx.text.endswith(":slow"):
        await asyncio.sleep(random.uniform(0.05, 0.25))
    ctx.data.setdefault("seen", []).append(ctx.text)
    await _note(ctx, "exit")
    ctx.reply(f"got {ctx.text}")


def armed(ctx: Context) -> None:
    ctx.data["due"] = ctx.session.deadline


def fired(ctx: Context) -> None:
    ctx.data["fired"] = ctx.data.get("fired", 0) + 1
    ctx.data["fired_at"] = ctx.now
    ctx.reply("fired")


TALLY = Spec("tally", "on", [State("on", on=[On("message", KEEP, action=record)])],
             any_state=[On("done", STOP)])
TIMED = Spec("timer", "wait", [
    State("wait", enter=armed, timeout=Timeout(TIMER, "timed", action=fired)),
    State("timed", on=[On("message", KEEP)]),
], any_state=[On("done", STOP)])


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main() -> None:
    global WORKER
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("partitions", type=int)
    parser.add_argument("worker_id")
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {args.worker_id} %(levelname)s %(message)s")
    if args.cluster:
        client = aioredis.RedisCluster.from_url(args.url, decode_responses=True)
    else:
        client = aioredis.Redis.from_url(args.url, decode_responses=True)
    skew = float(os.environ.get("CONVO_FSM_FAKE_SKEW", "0"))
    WORKER = FleetWorker(client, [TALLY, TIMED], worker_id=args.worker_id, prefix=args.prefix,
                         partitions=args.partitions, lease=args.lease, cluster=args.cluster,
                         skew=skew, poll=0.02)
    await WORKER.start()
    out(f"ready {args.worker_id}")
    await serve(WORKER)
    out("figures " + json.dumps(WORKER.figures()))
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
