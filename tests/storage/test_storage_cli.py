"""`convo-fsm sessions` (list, --stop, --force) and `convo-fsm play --store`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import games
from convo_fsm import Session
from convo_fsm.cli import main
from convo_fsm.storage import SqliteStore, fingerprint

GAME = games.load("guess-number")


async def fill(path: Path) -> None:
    store = SqliteStore(path)
    now = time.time()
    data = {"low": 1, "high": 100, "attempts": 7, "seed": 1, "secret": 42, "left": 7,
            "guesses": []}
    for key, deadline in (("local:user:bob", now + 3600), ("local:user:amy", None)):
        await store.save(Session(key, GAME.name, "guessing", data, deadline, None, 0,
                                 ("guessing",), now, now), fingerprint(GAME), None)
    await store.close()


async def records(path: Path) -> dict[str, tuple[str, float | None]]:
    store = SqliteStore(path)
    try:
        return {r.session.key: (r.session.state, r.session.deadline) for r in await store.list()}
    finally:
        await store.close()


def test_list_stop_and_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    asyncio.run(fill(db))
    assert main(["sessions", "--store", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KEY", "SPEC", "STATE", "LEFT"]
    assert lines[1].split()[:4] == ["local:user:amy", "guess-number", "guessing", "-"]
    bob = lines[2].split()
    assert bob[:3] == ["local:user:bob", "guess-number", "guessing"] and bob[3].endswith("s")
    assert 3000 < float(bob[3][:-1]) <= 3600

    assert main(["sessions", "--store", str(db), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["key"] for r in rows] == ["local:user:amy", "local:user:bob"]
    assert rows[0]["seconds_left"] is None and rows[1]["fingerprint"] == fingerprint(GAME)

    assert main(["sessions", "--store", str(db), "--force", "local:user:amy", "nope"]) == 2
    err = capsys.readouterr().err
    assert "has no state 'nope'" in err and "guessing" in err
    assert main(["sessions", "--store", str(db), "--force", "local:user:amy", "guessing"]) == 0
    state, deadline = asyncio.run(records(db))["local:user:amy"]
    assert state == "guessing" and deadline is not None  # the state's timeout is re-armed
    assert main(["sessions", "--store", str(db), "--force", "local:user:bob", "won"]) == 0
    assert "final state 'won'" in capsys.readouterr().out
    assert "local:user:bob" not in asyncio.run(records(db))  # a final state ends it

    assert main(["sessions", "--store", str(db), "--stop", "local:user:amy"]) == 0
    assert asyncio.run(records(db)) == {}
    assert main(["sessions", "--store", str(db), "--stop", "local:user:amy"]) == 2
    assert "no live session on 'local:user:amy'" in capsys.readouterr().err
    assert main(["sessions", "--store", str(db)]) == 0
    assert capsys.readouterr().out == "no live sessions\n"


def test_bad_store_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--store", "ftp://nowhere"]) == 2
    assert "unknown store URL" in capsys.readouterr().err
    assert main(["sessions", "--store", str(tmp_path / "missing" / "x.db")]) == 2
    assert "no store at" in capsys.readouterr().err
    script = tmp_path / "script.txt"
    script.write_text("/start\n")
    assert main(["play", "guess-number", "--store", "ftp://x", "--script", str(script)]) == 2
    assert "--store" in capsys.readouterr().err


def test_play_resumes_a_stored_game(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, script = tmp_path / "play.db", tmp_path / "script.txt"
    script.write_text("/start 1-100 7\n50\n")
    args = ["play", "guess-number", "--virtual", "--seed", "5", "--store", str(db),
            "--script", str(script)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "6 attempts left" in first and "restored" not in first
    script.write_text("/start\n20\n/sessions\n")
    assert main(args) == 0
    second = capsys.readouterr().out
    # Said first, naming the file (not the store object's repr).
    assert second.startswith(f"  (restoring 1 guess-number session(s) from {db})\n")
    assert "already running" in second  # the stored game, not a new one
    assert "5 attempts left" in second  # the count goes on from the first run
    script.write_text("/wait 1000\n/sessions\n")
    assert main(args) == 0
    third = capsys.readouterr().out
    assert "Time's up" in third and "no live sessions" in third
    assert asyncio.run(records(db)) == {}



def test_sessions_defaults_to_plays_store_and_refuses_a_missing_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    default = tmp_path / ".local" / "state" / "convo-fsm" / "play.db"
    assert main(["sessions"]) == 2
    err = capsys.readouterr().err
    assert f"no store at {str(default)!r} (convo-fsm play creates it" in err
    assert not (tmp_path / ".local").exists()  # nothing created
    default.parent.mkdir(parents=True)
    asyncio.run(fill(default))
    assert main(["sessions"]) == 0
    assert "local:user:bob" in capsys.readouterr().out
    typo = tmp_path / "paly.db"
    assert main(["sessions", "--store", str(typo)]) == 2
    assert f"no store at {str(typo)!r}" in capsys.readouterr().err and not typo.exists()


def test_sessions_and_play_refuse_another_applications_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE sessions (id INTEGER, user TEXT)")
    before = other.read_bytes()
    assert main(["sessions", "--store", str(other)]) == 2
    assert "is not a convo-fsm store" in capsys.readouterr().err
    script = tmp_path / "s.txt"
    script.write_text("/start\n")
    assert main(["play", "guess-number", "--store", str(other), "--script", str(script)]) == 2
    assert "is not a convo-fsm store" in capsys.readouterr().err
    assert other.read_bytes() == before  # not switched to WAL, no tables added
    assert not (tmp_path / "other.db-wal").exists()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    assert main(["sessions", "--store", str(text)]) == 2
    assert "is not an SQLite database" in capsys.readouterr().err


def test_sessions_aligns_cjk_keys_by_display_width(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from wcwidth import wcswidth

    db = tmp_path / "s.db"

    async def fill_cjk() -> None:
        store = SqliteStore(db)
        now = time.time()
        for key in ("local:group:成语群", "local:user:amy"):
            await store.save(Session(key, GAME.name, "guessing", {}, now + 100, None, 0,
                                     ("guessing",), now, now), fingerprint(GAME), None)
        await store.close()

    asyncio.run(fill_cjk())
    assert main(["sessions", "--store", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    columns = {wcswidth(line[:line.index("guess-number")]) for line in lines[1:]}
    assert len(columns) == 1  # the SPEC column starts at one screen column on every row
    assert wcswidth(lines[0][:lines[0].index("SPEC")]) in columns


@pytest.mark.parametrize("url", ["redis://[::1", "redis://127.0.0.1:1/0"])
def test_bad_or_unreachable_redis_is_one_line(url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("redis")
    assert main(["sessions", "--store", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convo-fsm sessions: error: ") and err.count("\n") == 1
    script = tmp_path / "s.txt"
    script.write_text("/start\n")
    assert main(["play", "guess-number", "--store", url, "--script", str(script)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convo-fsm play: error: ") and err.count("\n") == 1


def test_sessions_help_names_redis(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--help"]) == 0
    assert "redis://HOST:PORT/DB" in capsys.readouterr().out


def test_serve_refuses_a_missing_store_instead_of_creating_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn")
    typo = tmp_path / "paly.db"
    assert main(["serve", "--store", str(typo)]) == 2
    assert f"no store at {str(typo)!r}" in capsys.readouterr().err
    assert not typo.exists()
