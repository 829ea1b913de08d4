"""`convo-fsm play --record FILE` writes a transcript `convo-fsm replay` accepts; replay's
bad files are one-line errors with exit status 2 (1 means "diverged")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from games_kit import play

from convo_fsm.cli import main


@pytest.mark.parametrize(("game", "script"), [
    ("guess-number", "/start 1-100 7\n50\nhello\n/wait 35\n25\n/wait 61\n"),
    ("number-bomb", "/as ann@g\n/start\n/as ben@g\njoin\n/as ann@g\ngo\n50\n/wait 40\n"),
    ("idiom-chain", "/start\nhint\nhello\n/wait 50\nexit\n"),
])
def test_a_recorded_game_replays(game: str, script: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "game.jsonl"
    code, out, _ = play(tmp_path, capsys, game, script, "--virtual", "--seed", "4",
                        "--record", str(record))
    assert code == 0
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    replies = [line["text"] for line in lines if line["kind"] == "reply"]
    assert replies and all(text in out for text in replies)  # what the player saw
    assert main(["replay", str(record), game]) == 0
    assert f"ok: {len(lines)} lines of {record}" in capsys.readouterr().out
    # One reply changed: replay finds the divergence (exit 1).
    edited = record.read_text().replace(json.dumps(replies[0], ensure_ascii=False)[1:-1],
                                        "something else", 1)
    record.write_text(edited)
    assert main(["replay", str(record), game]) == 1
    assert "diverged at line" in capsys.readouterr().out


def test_record_into_a_missing_folder_is_an_error(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = play(tmp_path, capsys, "guess-number", "/start\n", "--virtual",
                        "--record", str(tmp_path / "no" / "game.jsonl"))
    assert code == 2 and "--record: cannot write" in err and err.count("\n") == 1
    assert not (tmp_path / "no").exists()


def _recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    record = tmp_path / "game.jsonl"
    assert play(tmp_path, capsys, "guess-number", "/start 1-100 7\n50\n", "--virtual",
                "--seed", "4", "--record", str(record))[0] == 0
    return record


def _edit(path: Path, kind: str, **fields: object) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    start = lines[0]
    # Before the session's end (play's engine closing is recorded as a stop).
    stop = next(i for i, line in enumerate(lines) if line["kind"] == "stop")
    lines.insert(stop, {"at": start["at"], "kind": kind, "key": start["key"], **fields})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.mark.parametrize(("kind", "fields", "problem"), [
    ("force", {"from": "guessing", "to": "nowhere"}, "cannot replay this force"),
    ("deadline", {"deadline": "soon"}, "cannot replay this deadline"),
])
def test_replay_of_a_bad_force_or_deadline_is_exit_2(
        kind: str, fields: dict[str, object], problem: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    record = _recorded(tmp_path, capsys)
    _edit(record, kind, **fields)
    capsys.readouterr()
    assert main(["replay", str(record), "guess-number"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convo-fsm replay: error: line ") and problem in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_replay_of_an_empty_transcript_is_an_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["replay", str(empty), "guess-number"]) == 2
    captured = capsys.readouterr()
    assert "holds no transcript lines" in captured.err and "ok:" not in captured.out
