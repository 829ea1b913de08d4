"""`convo-fsm sessions [--store URL]`: the live sessions of a store, and two admin acts.

    convo-fsm sessions                                   # play's store: key, spec, state, left
    convo-fsm sessions --store play.db --stop KEY        # end one (its record is deleted)
    convo-fsm sessions --store play.db --force KEY STATE # put one into STATE (no actions run)
    convo-fsm sessions --store redis://localhost:6379/0  # a Redis store

The default store is the one `convo-fsm play` keeps its games in. A file is only read if
it exists and is a convo-fsm store: a mistyped path or another application's SQLite file
is refused, never created or changed.

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
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from wcwidth import wcswidth

from convo_fsm import Force, Spec, step
from convo_fsm.cli.targets import TargetError, resolve
from convo_fsm.storage import Conflict, Store, StoreError, fingerprint, open_store

__all__ = ["check_ours", "register", "run"]


def register(subparsers: Any) -> None:
    from convo_fsm.cli.play import DEFAULT_STORE

    parser = subparsers.add_parser(
        "sessions", help="list a store's live sessions; stop or force one",
        description="List the live sessions kept in a store (key, spec, state, time left), "
                    "or act on one of them.",
        epilog="examples:\n"
               "  convo-fsm sessions                                  # play's own store\n"
               "  convo-fsm sessions --store play.db --json\n"
               "  convo-fsm sessions --store redis://localhost:6379/0\n"
               "  convo-fsm sessions --store play.db --stop local:user:alice\n"
               "  convo-fsm sessions --store play.db --force local:group:g1 playing "
               "--spec mymodule:SPEC")
    parser.add_argument("--store", metavar="URL", default=None,
                        help="the store: an SQLite file (PATH or sqlite:///PATH), "
                             "redis://HOST:PORT/DB or memory; default: "
                             f"{DEFAULT_STORE}, where `convo-fsm play` keeps its games")
    act = parser.add_mutually_exclusive_group()
    act.add_argument("--stop", metavar="KEY", help="end the session on KEY")
    act.add_argument("--force", nargs=2, metavar=("KEY", "STATE"),
                     help="put the session on KEY into STATE (timers re-armed, no actions run)")
    parser.add_argument("--spec", action="append", default=[], metavar="MODULE:ATTR",
                        help="a spec to check --force against (the games' specs are known)")
    parser.add_argument("--json", action="store_true", help="list as JSON lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from convo_fsm.cli.play import DEFAULT_STORE

    url = args.store if args.store is not None else str(Path(DEFAULT_STORE).expanduser())
    try:
        check_ours(url, default=args.store is None)
        store = open_store(url)
    except (StoreError, ValueError) as exc:  # ValueError: a URL urllib cannot parse
        return _fail(f"--store: {exc}")
    try:
        return asyncio.run(_main(store, args))
    except StoreError as exc:  # an unreachable Redis, a locked file
        return _fail(str(exc))


# The tables a convo-fsm SQLite store has (convo_fsm.storage.sqlite).
_OUR_TABLES = {"sessions": {"key", "spec", "fingerprint", "state", "due", "rev", "body"},
               "revision": {"id", "rev"}}


def check_ours(url: str, *, default: bool) -> None:
    """A store given as a file must be an existing convo-fsm store: opening a missing path
    would create an empty database, and another application's would get our tables."""
    if url == "memory" or ("://" in url and not url.startswith("sqlite://")):
        return
    path = Path(url.removeprefix("sqlite://"))
    if not path.exists():
        hint = (" (convo-fsm play creates it when you play in a terminal)" if default else "")
        raise StoreError(f"no store at {str(path)!r}{hint}")
    if not path.is_file():
        raise StoreError(f"{str(path)!r} is not a file")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {name: {row[1] for row in db.execute(f"PRAGMA table_info('{name}')")}
                      for (name,) in db.execute(
                          "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{str(path)!r} is not an SQLite database ({exc})") from None
    for name, columns in _OUR_TABLES.items():
        if not columns <= tables.get(name, set()):
            raise StoreError(f"{str(path)!r} is not a convo-fsm store (it has no {name!r} "
                             "table of ours); nothing was changed")


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
    widths = [max(_width(line[i]) for line in table) for i in range(3)]
    for line in table:
        print("  ".join(c + " " * (w - _width(c)) for c, w in zip(line, widths, strict=False))
              + "  " + line[3])
    return 0


def _width(text: str) -> int:
    """Terminal columns of `text`: a CJK character takes two."""
    n = wcswidth(text)
    return len(text) if n < 0 else n


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
        try:
            spec = resolve(ref).spec
        except TargetError as exc:
            raise StoreError(f"--spec {ref!r}: {exc}") from exc
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
