"""A game player for the crash test (run as a subprocess, not collected by pytest).

    python crash_player.py DB --now T [--die-on-save N]

It restores the guess-number sessions stored in DB, then reads one command a line
from stdin and answers on stdout (flushed), ending each (and the start-up) with `ok`:
`/start ARGS` (alice starts a game), `/wait S` (the virtual clock moves), anything
else is a message from alice. Replies print as `reply TO TEXT`. With
`--die-on-save N`, the process SIGKILLs itself at its Nth commit, after the step's
replies went out and before the commit: the window where replies are at-least-once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import games
from convo_fsm import Engine, Message, Reply, Session, VirtualClock
from convo_fsm.storage import SqliteStore


class DyingStore(SqliteStore):
    def __init__(self, path: str, die_on: int | None) -> None:
        super().__init__(path)
        self.saves = 0
        self.die_on = die_on

    async def save(self, session: Session, fingerprint: str, expect: int | None) -> int:
        self.saves += 1
        if self.saves == self.die_on:
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().save(session, fingerprint, expect)


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--now", type=float, default=0.0)
    parser.add_argument("--die-on-save", type=int)
    args = parser.parse_args()
    spec = games.load("guess-number")
    clock = VirtualClock(args.now)
    store = DyingStore(args.db, args.die_on_save)
    engine = Engine(clock=clock, store=store,
                    send=lambda r: out(f"reply {r.to} {r.text}") if isinstance(r, Reply) else None)
    restored = await engine.restore([spec])
    out(f"restored {len(restored)}")
    out("ok")
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        text = line.rstrip("\n")
        message = Message(text, sender="alice")
        if text.startswith("/wait "):
            await clock.advance(float(text.split()[1]))
        elif text.startswith("/start"):
            setup = spec.begin(message, seed=7)
            await engine.start(spec, engine.key(setup.kind, message), data=setup.data,
                               event=message)
        elif not await engine.dispatch(message):
            out("unhandled")
        out("ok")


if __name__ == "__main__":
    asyncio.run(main())
