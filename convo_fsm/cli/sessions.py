"""`convo-fsm sessions --store URL`: the live sessions of a store, and two admin acts.

    convo-fsm sessions --store play.db                   # key, spec, state, time left
    convo-fsm sessions --store play.db --stop KEY        # end one (its record is deleted)
    convo-fsm sessions --store play.db --force KEY STATE # put one into STATE (no actions run)

Both acts are compare-and-set on the record's revision, so they never overwrite a
change they did not see. An engine running on the same store takes the admin's
version at its next commit for that key (its write conflicts, and the stored record
wins). `--force` needs the session's spec to check STATE and re-arm its timeout:
the games' specs are found by name; another spec is named with `--spec MODULE:ATTR`.
Times left are computed against the wall clock (`WallClock`, what `play` uses).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from typing import Any

from convo_fsm import Force, Spec, step
from convo_fsm.storage import Conflict, Store, StoreError, fingerprint, open_store

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sessions", help="list a store's live sessions; stop or force one",
        description="List the live sessions kept in a store (key, spec, state, time left), "
                    "or act on one of them.")
    parser.add_argument("--store", required=True, metavar="URL",
                        help="the store: an SQLite file path, sqlite:///PATH or memory")
    act = parser.add_mutually_exclusive_group()
    act.add_argument("--stop", metavar="KEY", help="end the session on KEY")
    act.add_argument("--force", nargs=2, metavar=("KEY", "STATE"),
                     help="put the session on KEY into STATE (timers re-armed, no actions run)")
    parser.add_argument("--spec", action="append", default=[], metavar="MODULE:ATTR",
                        help="a spec to check --force against (the games' specs are known)")
    parser.add_argument("--json", action="store_true", help="list as JSON lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        store = open_store(args.store)
    except StoreError as exc:
        return _fail(f"--store: {exc}")
    try:
        return asyncio.run(_main(store, args))
    except StoreError as exc:
        return _fail(str(exc))


def _fail(message: str) -> int:
    print(f"convo-fsm sessions: error: {message}", file=sys.stderr)
    return 2


async def _main(store: Store, args: argparse.Namespace) -> int:
    try:
        if args.stop is not None:
            return await _stop(store, args.stop)
        if args.force is not None:
            key, state = args.force
            return await _force(store, key, state, args.spec)
        return await _list(store, args.json)
    finally:
        await store.close()


async def _list(store: Store, as_json: bool) -> int:
    now = time.time()
    records = await store.list()
    rows = []
    for r in records:
        s = r.session
        left = s.seconds_left(now)
        rows.append({"key": s.key, "spec": s.spec, "state": s.state,
                     "seconds_left": None if left is None else round(left, 1),
                     "rev": r.rev, "fingerprint": r.fingerprint})
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print("no live sessions")
        return 0
    table = [("KEY", "SPEC", "STATE", "LEFT")] + [
        (str(r["key"]), str(r["spec"]), str(r["state"]),
         "-" if r["seconds_left"] is None else f"{r['seconds_left']:g}s") for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[3])
    return 0


async def _stop(store: Store, key: str) -> int:
    try:
        stored = await store.load(key)
    except StoreError as exc:  # an unreadable record can still be removed
        print(f"(record {key!r} is unreadable: {exc})", file=sys.stderr)
        await store.delete(key)
        print(f"stopped {key}")
        return 0
    if stored is None:
        return _fail(f"no live session on {key!r}")
    try:
        await store.delete(key, stored.rev)
    except Conflict as exc:
        return _fail(f"{exc}; try again")
    print(f"stopped {key} ({stored.session.spec} in {stored.session.state!r})")
    return 0


def _find_spec(name: str, extra: list[str]) -> Spec | None:
    for ref in extra:
        module_name, _, attribute = ref.partition(":")
        try:
            spec = getattr(importlib.import_module(module_name), attribute or "spec")
        except (ImportError, AttributeError) as exc:
            raise StoreError(f"--spec {ref!r}: {exc}") from exc
        if not isinstance(spec, Spec):
            raise StoreError(f"--spec {ref!r} is a {type(spec).__name__}, not a Spec")
        if spec.name == name:
            return spec
    try:
        import games
    except ImportError:
        return None
    for game in games.GAMES:
        spec = games.load(game)
        if spec.name == name:
            return spec
    return None


async def _force(store: Store, key: str, state: str, extra: list[str]) -> int:
    stored = await store.load(key)
    if stored is None:
        return _fail(f"no live session on {key!r}")
    session = stored.session
    spec = _find_spec(session.spec, extra)
    if spec is None:
        return _fail(f"spec {session.spec!r} of {key!r} is not a game's: "
                     "name it with --spec MODULE:ATTR")
    if state not in spec.by_name:
        return _fail(f"spec {spec.name!r} has no state {state!r}; its states: "
                     f"{', '.join(spec.by_name)}")
    if session.state not in spec.by_name:  # stored by another version: step needs the old one
        session = session._replace(state=spec.initial)
    result = step(spec, session, Force(state), time.time())
    try:
        if spec.by_name[state].final:
            await store.delete(key, stored.rev)
            print(f"{key} forced into final state {state!r}: session ended")
            return 0
        await store.save(result.session, fingerprint(spec), stored.rev)
    except Conflict as exc:
        return _fail(f"{exc}; try again")
    left = result.session.seconds_left(time.time())
    print(f"{key} is now in {state!r}" + ("" if left is None else f" ({left:.0f}s left)"))
    return 0
