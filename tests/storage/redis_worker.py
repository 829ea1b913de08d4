"""A Redis worker process for the two-worker tests (run as a subprocess, not collected).

    python redis_worker.py URL PREFIX [--timeout S] [--hang-on WORD] [--ttl S]

Runs the `tally` spec below on a RedisWorker and reads commands from stdin:
`start KEY`, `say KEY TEXT` (deliver TEXT to KEY). Replies print as `reply KEY TEXT`;
`ok` follows each command once it is queued or done; `committed KEY LAST` each commit
(LAST: the last text in the session's `seen`). End of input: the worker closes and
prints `bye`. With `--hang-on WORD`, the action for WORD never returns in the first worker
that handles it (a worker to kill mid-action); in any other worker it runs as usual.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from convo_fsm import KEEP, STOP, Context, On, Session, Spec, State, Timeout
from convo_fsm.storage import RedisStore, RedisWorker


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def tally(timeout: float, hang_on: str | None, store: RedisStore) -> Spec:
    async def record(ctx: Context) -> None:
        # Only the first worker to meet WORD hangs (a flag in Redis): the one to kill.
        if ctx.text == hang_on and await store.redis.set(store.k("hung"), "1", nx=True):
            out(f"hanging {ctx.key} {ctx.text}")
            await asyncio.Event().wait()
        ctx.data.setdefault("seen", []).append(ctx.text)
        ctx.reply(f"got {ctx.text}")

    def fired(ctx: Context) -> None:
        ctx.data["fired"] = ctx.data.get("fired", 0) + 1
        ctx.reply("fired")

    return Spec("tally", "on", [
        State("on", on=[On("message", KEEP, action=record, reset_timeout=False)],
              timeout=Timeout(timeout, "timed", action=fired)),
        State("timed", on=[On("message", KEEP, action=record)]),
    ], any_state=[On("done", STOP)])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--hang-on")
    parser.add_argument("--ttl", type=float, default=0.5)
    args = parser.parse_args()
    store = RedisStore.from_url(args.url, prefix=args.prefix)
    spec = tally(args.timeout, args.hang_on, store)
    pending: set[asyncio.Task[Any]] = set()
    def committed(key: str, session: Session | None) -> None:
        seen = [] if session is None else session.data.get("seen", [])
        out(f"committed {key} {seen[-1] if seen else '-'}")

    async with RedisWorker(store, [spec], send=lambda r: out(f"reply {r.to} {r.text}"),
                           lock_ttl=args.ttl, poll=0.02, on_commit=committed) as worker:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command, key, *rest = line.rstrip("\n").split(" ", 2)
            if command == "start":
                await worker.start(spec, key)
            else:
                # Delivering may mean draining the key's inbox: do it beside reading.
                task = loop.create_task(worker.deliver(key, rest[0]))
                pending.add(task)
                task.add_done_callback(pending.discard)
            out("ok")
        await asyncio.gather(*pending)
    await store.close()
    out("bye")


if __name__ == "__main__":
    asyncio.run(main())
