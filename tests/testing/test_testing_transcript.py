"""Transcripts: record a conversation as JSON lines, replay it, find the first divergence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import games
from convo_fsm import KEEP, STOP, Context, On, Spec, State, Timeout
from convo_fsm.cli import main
from convo_fsm.testing import (
    ConversationTester,
    Transcript,
    TranscriptError,
    areplay,
    assert_replays,
)


def make_quiz(answer: str, name: str = "transcript-quiz") -> Spec:
    def wrong(ctx: Context) -> None:
        ctx.data["tries"] = ctx.data.get("tries", 0) + 1
        ctx.reply("No, try again.")

    return Spec(
        name=name,
        initial="asking",
        states=[
            State("asking", enter=lambda c: c.reply("What is 6 x 7?"),
                  on=[On("message", "done", guard=lambda c: c.text.strip() == answer,
                         action=lambda c: c.reply("Right!")),
                      On("message", KEEP, action=wrong)],
                  timeout=Timeout(30, "reminded", warn_before=10,
                                  warn=lambda c: c.reply("10 s left"))),
            State("reminded", enter=lambda c: c.reply("Still there?"),
                  on=[On("message", "done", guard=lambda c: c.text.strip() == answer)],
                  timeout=Timeout(30, STOP, action=lambda c: c.reply("Time's up."))),
            State("done", final=True, enter=lambda c: c.reply("Thanks.")),
        ],
        any_state=[On("exit", STOP)],
    )


QUIZ = make_quiz("42")
QUIZ_WRONG = make_quiz("41", name="transcript-quiz")  # same name, a changed rule


async def record(spec: Spec = QUIZ) -> ConversationTester:
    t = ConversationTester(spec)
    await t.start("alice")
    await t.start("bob", group="g")
    await t.say("alice", "41")
    await t.advance(20)
    await t.say("bob", "/exit", group="g")
    await t.say("carol", "hello")  # no session: not in the transcript
    await t.advance(10)
    await t.say("alice", "42")
    return t


async def test_transcript_lines_say_what_happened_in_order(tmp_path: Path) -> None:
    t = await record()
    path = tmp_path / "quiz.jsonl"
    t.transcript.save(path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    alice = t.key("alice")
    first = lines[0]
    assert first["kind"] == "step" and first["on"] == "start" and first["to"] == "asking"
    assert first["spec"] == "transcript-quiz" and first["event"]["sender"] == "alice"
    timers = [(r["at"], r["on"], r["to"]) for r in lines
              if r["kind"] == "step" and r["on"] in ("timeout", "warning") and r["key"] == alice]
    assert timers == [(20.0, "warning", "asking"), (30.0, "timeout", "reminded")]
    end = lines[-2]  # then the result line: the message was consumed
    assert end == {"at": 30.0, "kind": "end", "key": alice, "reason": "final",
                   "state": "done", "data": {"tries": 1}}


async def test_replay_of_an_unchanged_spec_matches_every_line(tmp_path: Path) -> None:
    t = await record()
    result = await areplay(t.transcript, QUIZ)
    assert result.ok and result.replayed == len(t.transcript)
    path = tmp_path / "alice.jsonl"
    t.transcript.for_key(t.key("alice")).save(path)
    assert (await areplay(path, QUIZ)).ok  # one session's transcript replays alone


async def test_replay_reports_the_first_divergence_with_its_line(tmp_path: Path) -> None:
    t = await record()
    path = tmp_path / "quiz.jsonl"
    t.transcript.save(path)
    result = await areplay(path, QUIZ_WRONG)  # "41" is now the answer
    d = result.divergence
    assert d is not None and d.expected is not None and d.actual is not None
    assert d.expected["kind"] == "step" and d.expected["to"] == "asking"
    assert d.actual["to"] == "done"
    assert json.loads(path.read_text().splitlines()[d.line - 1]) == d.expected  # type: ignore[operator]
    assert f"line {d.line}: expected step asking -> asking" in str(d)


async def test_a_later_timer_is_a_divergence() -> None:
    t = ConversationTester(QUIZ)
    await t.start("alice")
    await t.advance(45)
    slower = Spec(name="transcript-quiz", initial="asking", states=[
        State("asking", enter=lambda c: c.reply("What is 6 x 7?"),
              on=[On("message", STOP)], timeout=Timeout(40, STOP))])
    d = (await areplay(t.transcript, slower)).divergence
    assert d is not None and d.expected is not None
    assert (d.expected["kind"], d.expected["at"]) == ("step", 20.0)  # the warning at 20 s
    assert d.actual is None or d.actual["at"] != 20.0


def test_assert_replays_is_a_one_line_regression_test(tmp_path: Path) -> None:
    import asyncio

    t = asyncio.run(record())
    path = tmp_path / "quiz.jsonl"
    t.transcript.save(path)
    assert_replays(path, QUIZ)
    with pytest.raises(AssertionError, match="replay diverged at line"):
        assert_replays(path, QUIZ_WRONG)


def test_bad_transcripts_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="line 2: not JSON"):
        Transcript.loads('{"at": 0, "kind": "reply", "key": "k", "text": "x"}\n{oops\n')
    with pytest.raises(TranscriptError, match="line 1: field 'at'"):
        Transcript.loads('{"kind": "reply", "key": "k"}')
    with pytest.raises(TranscriptError, match="line 1: expected a JSON object"):
        Transcript.loads("[1, 2]")
    with pytest.raises(TranscriptError, match="cannot read"):
        Transcript.load(tmp_path / "missing.jsonl")
    other = '{"at": 0, "kind": "step", "key": "k", "on": "start", "from": null, ' \
            '"to": "a", "spec": "nope", "data": {}, "event": null}'
    with pytest.raises(TranscriptError, match="line 1: the transcript starts spec 'nope'"):
        import asyncio
        asyncio.run(areplay(Transcript.loads(other), QUIZ))


async def test_cli_replay_with_module_attribute_target(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    t = await record()
    path = tmp_path / "quiz.jsonl"
    t.transcript.save(path)
    target = f"{__name__}:QUIZ"
    # main() runs its own event loop: call it from a worker thread-free sync helper
    import asyncio
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, main, ["replay", str(path), target])
    assert code == 0 and "ok:" in capsys.readouterr().out
    code = await loop.run_in_executor(None, main, ["replay", str(path), f"{__name__}:QUIZ_WRONG"])
    out = capsys.readouterr().out
    assert code == 1 and "diverged at line" in out and "expected: step asking -> asking" in out


def test_cli_replay_bad_target_or_file_exits_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("not json\n")
    assert main(["replay", str(path), "no-such-game"]) == 2
    assert "unknown game 'no-such-game'" in capsys.readouterr().err
    assert main(["replay", str(path), f"{__name__}:make_quiz"]) == 2
    assert "not a convo_fsm.Spec" in capsys.readouterr().err
    assert main(["replay", str(path), "no_such_module_xyz:SPEC"]) == 2
    assert "cannot import" in capsys.readouterr().err
    assert main(["replay", str(path), f"{__name__}:QUIZ"]) == 2
    assert "line 1: not JSON" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(games.GAMES))
def test_every_game_recorded_replays_by_name(name: str, tmp_path: Path) -> None:
    import asyncio

    async def play() -> Transcript:
        spec = games.load(name)
        t = ConversationTester(spec, seed=7)  # the spec starts itself: no registry
        await t.start("alice", group="g")
        for text in ("/help", "50", "hello", "25", "/hint", "75"):
            await t.say("alice", text, group="g")
            await t.say("bob", text, group="g")
            await t.advance(7)
        await t.advance(100)
        return t.transcript

    transcript = asyncio.run(play())
    assert len(transcript) > 3
    path = tmp_path / f"{name}.jsonl"
    transcript.save(path)
    assert main(["replay", str(path), name]) == 0
