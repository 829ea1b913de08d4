"""Forms (`convo_fsm.forms`): slots asked in turn, validated answers, re-prompts with the
reason, retry limits, back/skip/cancel, per-slot timeouts, summary with confirm/edit; the
result an ordinary Spec (engine, stores, diagrams and the kit's machine run it)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from diagram_helpers import expected_edges, parse_dot, parse_mermaid
from hypothesis import given, settings
from hypothesis import strategies as st

from convo_fsm import Engine, Spec, SpecError, VirtualClock
from convo_fsm.diagram import render
from convo_fsm.forms import (
    CANCELLED,
    DONE,
    Reason,
    Slot,
    choice,
    date,
    form,
    integer,
    text,
)
from convo_fsm.storage import MemoryStore
from convo_fsm.testing import ConversationTester
from convo_fsm.testing.hypothesis import FORM_TEXTS, conversation_machine, forms

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_form() -> tuple[dict[str, Any], str]:
    """README's Forms section: its Python block run as a module, and its output block."""
    section = README.read_text(encoding="utf-8").split("## Forms\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    output = re.search(r"```text\n(.*?)```", section, re.S)
    assert code is not None and output is not None
    namespace: dict[str, Any] = {"__name__": "readme_signup"}
    exec(compile(code.group(1), "README.md (Forms)", "exec"), namespace)
    return namespace, output.group(1)


def test_readme_signup_form_runs_as_written_and_prints_what_readme_shows() -> None:
    namespace, expected = readme_form()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(namespace["demo"]())
    assert out.getvalue() == expected
    assert out.getvalue().endswith("final {'name': 'Ann', 'age': 35, 'plan': 'free'}\n")


SIGNUP = form("signup-test", [
    Slot("name", "Name?", text(max_length=5)),
    Slot("age", "Age?", integer(13, 120), retries=2),
    Slot("news", "Newsletter, yes or no?", choice("yes", "no"), optional=True,
         give_up="skip", retries=1),
    Slot("when", "Start date?", date(earliest=dt.date(2020, 1, 1)), optional=True,
         timeout=60, warn_before=20, warning="20 s left", timeout_message="Too slow."),
], done="Done.", cancelled="Cancelled.")


async def test_a_form_fills_its_data_and_ends_done() -> None:
    t = ConversationTester(SIGNUP)
    assert await t.start("ann") == ["Name?"]
    assert await t.say("ann", "Ann") == ["Age?"]
    assert await t.say("ann", "40") == ["Newsletter, yes or no?"]
    # 'yes' is also the confirm word: in a question it is an answer.
    assert await t.say("ann", "yes") == ["Start date?"]
    said = await t.say("ann", "2024-02-29")
    assert said[0].splitlines()[1:5] == ["- name: Ann", "- age: 40", "- news: yes",
                                         "- when: 2024-02-29"]
    assert await t.say("ann", "/yes") == ["Done."]
    ended = t.ended("ann")
    assert ended is not None and ended.reason == "final" and ended.session.state == DONE
    assert ended.session.data == {"name": "Ann", "age": 40, "news": "yes",
                                  "when": "2024-02-29"}  # no bookkeeping left


async def test_refused_answers_are_told_the_reason_until_the_retry_limit() -> None:
    t = ConversationTester(SIGNUP)
    await t.start("ann")
    assert await t.say("ann", "Annabelle") == [
        "That is too long (9 characters): at most 5. Name?"]
    assert await t.say("ann", "Ann") == ["Age?"]
    assert await t.say("ann", "7") == ["7 is out of range: send a number from 13 to 120. Age?"]
    # retries=2: the second refused answer in a row gives up (cancel).
    assert await t.say("ann", "old") == ["'old' is not a whole number. Too many tries.",
                                         "Cancelled."]
    ended = t.ended("ann")
    assert ended is not None and ended.session.state == CANCELLED


async def test_a_good_answer_resets_the_tries_and_give_up_skip_moves_on() -> None:
    t = ConversationTester(SIGNUP)
    await t.start("ann")
    await t.say("ann", "Ann")
    await t.say("ann", "x")  # one refused answer on age
    await t.say("ann", "back")
    await t.say("ann", "Bo")
    assert await t.say("ann", "x") == ["'x' is not a whole number. Age?"]  # tries restarted
    await t.say("ann", "20")
    assert await t.say("ann", "maybe") == ["'maybe' is not one of: yes, no. Skipping this one.",
                                           "Start date?"]
    assert "news" not in t.data("ann")


async def test_back_skip_and_cancel_work_in_every_question() -> None:
    t = ConversationTester(SIGNUP)
    await t.start("ann")
    assert await t.say("ann", "back") == [
        "This is the first question: there is nothing to go back to."]
    assert await t.say("ann", "skip") == ["This one cannot be skipped."]
    await t.say("ann", "Ann")
    assert await t.say("ann", "BACK") == ["Name?"]
    assert t.state("ann") == "name"
    await t.say("ann", "Cy")
    await t.say("ann", "30")
    assert await t.say("ann", "skip") == ["Start date?"]
    assert await t.say("ann", "1999-12-31") == [
        "1999-12-31 is too early: 2020-01-01 or later. Start date?"]
    assert await t.say("ann", "31/12/2024") == [
        "'31/12/2024' is not a date like 2024-12-31. Start date?"]
    assert await t.say("ann", "/cancel") == ["Cancelled."]
    assert t.ended("ann").session.state == CANCELLED  # type: ignore[union-attr]


async def test_a_slot_timeout_warns_then_ends_the_form() -> None:
    t = ConversationTester(SIGNUP)
    await t.start("ann")
    for answer in ("Ann", "30", "no"):
        await t.say("ann", answer)
    assert t.state("ann") == "when"
    assert await t.advance(40) == ["20 s left"]
    assert await t.advance(20) == ["Too slow."]
    ended = t.ended("ann")
    assert ended is not None and ended.reason == "timeout"
    assert "_form" not in ended.session.data
    # The other slots have no timeout: a session waits there.
    await t.start("bob")
    assert await t.advance(10_000) == [] and t.state("bob") == "name"


async def test_edit_goes_to_the_slot_and_straight_back_to_the_summary() -> None:
    t = ConversationTester(SIGNUP)
    await t.start("ann")
    for answer in ("Ann", "30", "no", "2024-01-01"):
        await t.say("ann", answer)
    assert t.state("ann") == "confirm"
    assert await t.say("ann", "edit") == [
        "Edit which answer? Send 'edit NAME', one of: name, age, news, when."]
    assert await t.say("ann", "edit shoe") == [
        "Edit which answer? Send 'edit NAME', one of: name, age, news, when."]
    assert await t.say("ann", "hello") == ["Send 'yes' to confirm, or 'edit NAME'."]
    assert await t.say("ann", "edit age") == ["Age?"]
    said = await t.say("ann", "31")
    assert said[0].startswith("Please check your answers:") and "- age: 31" in said[0]
    # Skipping an optional slot while editing also comes back to the summary.
    await t.say("ann", "edit news")
    said = await t.say("ann", "skip")
    assert "- news: (skipped)" in said[0]
    assert await t.say("ann", "back") == ["Start date?"]  # back from the summary
    await t.say("ann", "2024-01-02")
    assert await t.say("ann", "ok") == ["Done."]
    assert t.ended("ann").session.data == {  # type: ignore[union-attr]
        "name": "Ann", "age": 31, "when": "2024-01-02"}


async def test_without_confirm_the_last_answer_ends_the_form() -> None:
    quick = form("quick", [Slot("n", "N?", integer())], confirm=False, done="")
    t = ConversationTester(quick)
    await t.start("ann")
    assert await t.say("ann", "yes") == ["'yes' is not a whole number. N?"]
    assert await t.say("ann", "5") == []
    assert t.ended("ann").session.data == {"n": 5}  # type: ignore[union-attr]


async def test_a_custom_parser_may_return_a_reason_or_raise_value_error() -> None:
    def even(answer: str) -> int | Reason:
        n = int(answer)  # a ValueError is a reason too
        return n if n % 2 == 0 else Reason(f"{n} is odd")

    spec = form("even", [Slot("n", "Even number?", even, retries=5)], confirm=False)
    t = ConversationTester(spec)
    await t.start("ann")
    assert await t.say("ann", "3") == ["3 is odd. Even number?"]
    said = await t.say("ann", "x")
    assert said[0].startswith("Invalid literal for int()")
    assert await t.say("ann", "4") == ["Thanks, that's everything."]


async def test_a_restart_mid_form_resumes_at_the_same_question_with_its_tries() -> None:
    store, clock = MemoryStore(), VirtualClock()
    engine = Engine(clock=clock, store=store)
    await engine.start(SIGNUP, "k")
    for answer in ("Ann", "x"):
        await engine.deliver("k", answer)
    await engine.close()
    engine2 = Engine(clock=VirtualClock(), store=store)
    await engine2.restore([SIGNUP])
    session = engine2.session("k")
    assert session is not None and session.state == "age"
    assert session.data["name"] == "Ann" and session.data["_form"]["tries"] == 1
    engine2.outbox.clear()
    await engine2.deliver("k", "y")  # the second refused answer: retries=2 gives up
    assert [r.text for r in engine2.outbox] == ["'y' is not a whole number. Too many tries.",
                                                "Cancelled."]
    await engine2.close()


@pytest.mark.parametrize(("slots", "kwargs", "message"), [
    ([], {}, "a form needs at least one slot"),
    ([Slot("a", "A?"), Slot("a", "B?")], {}, "state 'a': duplicate slot"),
    ([Slot("done", "?")], {}, "slot name must be an identifier"),
    ([Slot("_x", "?")], {}, "slot name must be an identifier"),
    ([Slot("a", "?", retries=0)], {}, "retries must be an int >= 1"),
    ([Slot("a", "?", give_up="skip")], {}, "give_up='skip' needs an optional slot"),
    ([Slot("a", "?", give_up="later")], {}, "give_up must be 'cancel' or 'skip'"),  # type: ignore[arg-type]
    ([Slot("a", "?", warn_before=3)], {}, "warn_before and warning go together"),
    ([Slot("a", "?", warn_before=3, warning="w")], {}, "a warning needs a timeout"),
    ([Slot("a", "?", timeout=5, warn_before=9, warning="w")], {}, "warn_before must be > 0"),
    (["a"], {}, "slots must be Slot objects"),
])
def test_malformed_forms_are_spec_errors(slots: list[Any], kwargs: dict[str, Any],
                                         message: str) -> None:
    with pytest.raises(SpecError, match=message):
        form("bad", slots, **kwargs)


@given(low=st.integers(-100, 100), span=st.integers(0, 100), n=st.integers(-300, 300))
def test_integer_accepts_exactly_its_range(low: int, span: int, n: int) -> None:
    parsed = integer(low, low + span)(str(n))
    assert (parsed == n) == (low <= n <= low + span)
    assert isinstance(parsed, Reason) != (low <= n <= low + span)


@given(st.text(max_size=12))
def test_text_trims_and_limits_length(answer: str) -> None:
    parsed = text(max_length=6)(answer)
    squeezed = " ".join(answer.split())
    if 1 <= len(squeezed) <= 6:
        assert parsed == squeezed
    else:
        assert isinstance(parsed, Reason)


def test_choice_is_case_insensitive_and_gives_the_declared_spelling() -> None:
    assert choice("Free", "Pro")(" pro ") == "Pro"
    assert choice("Free", "Pro")("gold") == Reason("'gold' is not one of: Free, Pro")
    assert date("%d.%m.%Y", latest=dt.date(2030, 1, 1))("31.12.2029") == "2029-12-31"
    assert isinstance(date(latest=dt.date(2030, 1, 1))("2031-01-01"), Reason)
    with pytest.raises(ValueError):
        choice()


def test_a_form_is_drawn_like_any_spec() -> None:
    expected = expected_edges(SIGNUP)
    assert expected[("name", "age", False, "message [valid]")] == 1
    assert expected[("confirm", "age", False, "edit [edit age]")] == 1
    assert expected[("<any state>", CANCELLED, False, "cancel")] == 1
    for parse, fmt in ((parse_dot, "dot"), (parse_mermaid, "mermaid")):
        assert parse(render(SIGNUP, fmt)).edges() == expected, fmt


TestSignupForm = conversation_machine(
    SIGNUP, texts=("Ann", "30", "7", "yes", "no", "2024-01-01", "edit age", "edit", "back",
                   "skip", "cancel", "ok")).TestCase
TestSignupForm.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)


def test_a_form_is_an_ordinary_spec() -> None:
    assert isinstance(SIGNUP, Spec)
    assert SIGNUP.final_states == {DONE, CANCELLED}
    assert [s.name for s in SIGNUP.states][:4] == ["name", "age", "news", "when"]

TestRandomForms = conversation_machine(forms(), texts=FORM_TEXTS).TestCase
TestRandomForms.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
