"""Forms: an ordinary `Spec` built from slots, each asked in turn and validated.

    signup = form("signup", [
        Slot("name", "Your name?", text(max_length=40)),
        Slot("age", "Your age?", integer(13, 120)),
        Slot("plan", "Which plan: free or pro?", choice("free", "pro")),
        Slot("birthday", "Your birthday (YYYY-MM-DD)? 'skip' if you'd rather not say.",
             date(), optional=True),
    ])

Each slot is one state named after it: its `prompt` is sent on entry; an answer its parser
accepts is stored in the session's data under the slot's name and the form moves on; one it
refuses is answered with the parser's reason and the prompt again, up to `retries` times,
after which `give_up` says what happens ("cancel" ends the form in `cancelled`, "skip" moves
on without a value, for optional slots). `back` returns to the previous slot, `skip` passes
an optional slot, `cancel` ends the form at any point (in `cancelled`). A slot may have its
own timeout and warning. After the last slot a summary asks for confirmation (`yes`), or
`edit SLOT` to change one answer (the form then comes straight back to the summary); a
confirmed form ends in its final state `done` with the answers as the session's data.

A parser takes the answer's text and returns the value (JSON-serialisable: it is stored) or a
`Reason` saying why not; raising `ValueError` counts as a reason too. `integer`, `choice`,
`date` and `text` are ready-made; any callable will do.

The result is a `Spec` like any other: the engine, the stores, the diagrams and the testing
kit know nothing about forms. Its bookkeeping lives in `data["_form"]`, removed at the end.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from convo_fsm.context import Context
from convo_fsm.spec import KEEP, STOP, On, Spec, SpecError, Start, State, Target, Timeout

__all__ = [
    "CANCELLED",
    "CONFIRM",
    "DONE",
    "Reason",
    "Slot",
    "Words",
    "choice",
    "date",
    "form",
    "integer",
    "text",
]

DONE: Final = "done"
"""The final state of a confirmed form."""
CANCELLED: Final = "cancelled"
"""The final state of a cancelled form (or one given up after too many bad answers)."""
CONFIRM: Final = "confirm"
"""The summary state."""
_RESERVED = frozenset({DONE, CANCELLED, CONFIRM})
_BOOK: Final = "_form"


@attrs.frozen
class Reason:
    """Why an answer was refused (what the user is told before the prompt again)."""

    text: str


Parser = Callable[[str], Any]


def _parse(parser: Parser, answer: str) -> Any:
    """The parsed value, or a `Reason` (a `ValueError` from the parser becomes one)."""
    try:
        return parser(answer)
    except ValueError as exc:
        return Reason(str(exc) or "that is not a valid answer")


# -- ready-made parsers ----------------------------------------------------------------------
def integer(low: int | None = None, high: int | None = None) -> Parser:
    """A whole number, within `low`..`high` (inclusive) when given."""
    def parse(answer: str) -> int | Reason:
        stripped = answer.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not digits.isdecimal() or len(digits) > 18:
            return Reason(f"{stripped!r} is not a whole number")
        n = int(stripped)
        if (low is not None and n < low) or (high is not None and n > high):
            span = (f"from {low} to {high}" if low is not None and high is not None
                    else f"at least {low}" if low is not None else f"at most {high}")
            return Reason(f"{n} is out of range: send a number {span}")
        return n

    parse.__name__ = f"integer({low}, {high})"
    return parse


def choice(*options: str) -> Parser:
    """One of `options` (case-insensitive); the value is the option as declared."""
    if not options:
        raise ValueError("choice() needs at least one option")
    folded = {o.casefold(): o for o in options}

    def parse(answer: str) -> str | Reason:
        found = folded.get(answer.strip().casefold())
        if found is None:
            return Reason(f"{answer.strip()!r} is not one of: {', '.join(options)}")
        return found

    parse.__name__ = f"choice({', '.join(options)})"
    return parse


def date(fmt: str = "%Y-%m-%d", *, earliest: _dt.date | None = None,
         latest: _dt.date | None = None) -> Parser:
    """A date written as `fmt`, within `earliest`..`latest` when given; stored ISO
    (`YYYY-MM-DD`, a string: session data stays JSON)."""
    def parse(answer: str) -> str | Reason:
        try:
            day = _dt.datetime.strptime(answer.strip(), fmt).date()
        except ValueError:
            example = _dt.date(2024, 12, 31).strftime(fmt)
            return Reason(f"{answer.strip()!r} is not a date like {example}")
        if earliest is not None and day < earliest:
            return Reason(f"{day.isoformat()} is too early: {earliest.isoformat()} or later")
        if latest is not None and day > latest:
            return Reason(f"{day.isoformat()} is too late: {latest.isoformat()} or earlier")
        return day.isoformat()

    parse.__name__ = f"date({fmt})"
    return parse


def text(max_length: int = 200, *, min_length: int = 1) -> Parser:
    """Free text (spaces trimmed) of `min_length` to `max_length` characters."""
    def parse(answer: str) -> str | Reason:
        value = " ".join(answer.split())
        if len(value) < min_length:
            return Reason("that is empty" if min_length == 1 and not value
                          else f"that is too short: at least {min_length} characters")
        if len(value) > max_length:
            return Reason(f"that is too long ({len(value)} characters): at most {max_length}")
        return value

    parse.__name__ = f"text({max_length})"
    return parse


# -- declaration ---------------------------------------------------------------------------------
@attrs.frozen
class Slot:
    """One question of a form.

    `parse(answer)` returns the value or a `Reason`. `retries`: how many refused answers in
    a row the slot takes (each but the last is answered with the reason and the prompt
    again); the last one gives up as `give_up` says ("cancel": the form ends in `cancelled`;
    "skip": the slot is left without a value and the form moves on, optional slots only).
    `timeout` seconds of silence end the form (reason "timeout") with `timeout_message`;
    `warn_before` seconds before it, `warning` is sent. The default parser is `text()`.
    """

    name: str
    prompt: str
    parse: Parser = attrs.field(factory=text)
    optional: bool = False
    retries: int = 3
    give_up: Literal["cancel", "skip"] = "cancel"
    timeout: float | None = None
    warn_before: float | None = None
    warning: str | None = None
    timeout_message: str = "Time's up: the form was not finished."


@attrs.frozen
class Words:
    """The words a form understands (also as `/word`), case-insensitive."""

    back: tuple[str, ...] = ("back",)
    skip: tuple[str, ...] = ("skip",)
    cancel: tuple[str, ...] = ("cancel",)
    confirm: tuple[str, ...] = ("yes", "y", "confirm", "ok")
    edit: tuple[str, ...] = ("edit",)


def _book(ctx: Context) -> dict[str, Any]:
    book: dict[str, Any] = ctx.data.setdefault(_BOOK, {"tries": 0, "editing": False})
    return book


def form(
    name: str,
    slots: Sequence[Slot],
    *,
    confirm: bool = True,
    intro: str | None = None,
    done: str = "Thanks, that's everything.",
    cancelled: str = "Cancelled: nothing was kept.",
    words: Words = Words(),
    start: Start | None = None,
    summary_title: str = "Please check your answers:",
) -> Spec:
    """A `Spec` asking `slots` in order (see the module docstring). `intro` is sent before
    the first prompt; `done`/`cancelled` when the form ends either way."""
    slots = tuple(slots)

    def fail(message: str, state: str | None = None, event: str | None = None) -> SpecError:
        return SpecError(message, spec=str(name), state=state, event=event)

    if not slots:
        raise fail("a form needs at least one slot")
    seen: set[str] = set()
    for slot in slots:
        if not isinstance(slot, Slot):
            raise fail(f"slots must be Slot objects, got {slot!r}")
        if (not isinstance(slot.name, str) or not slot.name.isidentifier()
                or slot.name.startswith("_") or slot.name in _RESERVED):
            raise fail(f"slot name must be an identifier not starting with '_' and not one of "
                       f"{', '.join(sorted(_RESERVED))}, got {slot.name!r}", slot.name)
        if slot.name in seen:
            raise fail("duplicate slot", slot.name)
        seen.add(slot.name)
        if not callable(slot.parse):
            raise fail(f"slot parse must be callable, got {slot.parse!r}", slot.name, "message")
        if not isinstance(slot.retries, int) or isinstance(slot.retries, bool) or slot.retries < 1:
            raise fail(f"retries must be an int >= 1, got {slot.retries!r}", slot.name)
        if slot.give_up not in ("cancel", "skip"):
            raise fail(f"give_up must be 'cancel' or 'skip', got {slot.give_up!r}", slot.name)
        if slot.give_up == "skip" and not slot.optional:
            raise fail("give_up='skip' needs an optional slot (a required one cannot be left "
                       "without a value)", slot.name)
        if (slot.warning is None) != (slot.warn_before is None):
            raise fail("warn_before and warning go together", slot.name, "timeout")
        if slot.timeout is None and slot.warn_before is not None:
            raise fail("a warning needs a timeout", slot.name, "timeout")

    names = [s.name for s in slots]
    after_slots = CONFIRM if confirm else DONE
    word_table: dict[str, str] = {}
    for event, group in (("back", words.back), ("skip", words.skip), ("cancel", words.cancel),
                         ("confirm", words.confirm if confirm else ()),
                         ("edit", words.edit if confirm else ())):
        for word in group:
            word_table[word.casefold()] = event

    def classify(event: Any) -> str:
        raw = event if isinstance(event, str) else getattr(event, "text", None)
        if not isinstance(raw, str):
            from convo_fsm.spec import classify_text
            return classify_text(event)  # raises EventError, naming the event
        words_in = raw.strip().split()
        if not words_in:
            return "message"
        first = words_in[0].casefold()
        if first.startswith("/") and len(first) > 1:
            first = first[1:]
        found = word_table.get(first)
        if found == "edit":
            return "edit"
        if found is not None and len(words_in) == 1:
            return found
        return "message"

    def valid_for(slot: Slot) -> Callable[[Context], bool]:
        def valid(ctx: Context) -> bool:
            return not isinstance(_parse(slot.parse, ctx.text), Reason)
        valid.__name__ = "valid"
        return valid

    def editing_valid_for(slot: Slot) -> Callable[[Context], bool]:
        check = valid_for(slot)

        def valid_while_editing(ctx: Context) -> bool:
            return bool(_book(ctx)["editing"]) and check(ctx)
        valid_while_editing.__name__ = "valid, editing"
        return valid_while_editing

    def editing(ctx: Context) -> bool:
        return bool(_book(ctx)["editing"])

    def last_try_for(slot: Slot) -> Callable[[Context], bool]:
        def last_try(ctx: Context) -> bool:
            return int(_book(ctx)["tries"]) + 1 >= slot.retries
        last_try.__name__ = "last try"
        return last_try

    def store_for(slot: Slot) -> Callable[[Context], None]:
        def store(ctx: Context) -> None:
            ctx.data[slot.name] = _parse(slot.parse, ctx.text)
        store.__name__ = f"store_{slot.name}"
        return store

    def ask_for(slot: Slot, first: bool) -> Callable[[Context], None]:
        def ask(ctx: Context) -> None:
            book = _book(ctx)
            book["tries"] = 0
            if first and intro is not None and not book.get("asked"):
                ctx.reply(intro)
            book["asked"] = True
            ctx.reply(slot.prompt)
        ask.__name__ = f"ask_{slot.name}"
        return ask

    def refuse_for(slot: Slot) -> Callable[[Context], None]:
        def refuse(ctx: Context) -> None:
            reason = _parse(slot.parse, ctx.text)
            _book(ctx)["tries"] = int(_book(ctx)["tries"]) + 1
            text_ = reason.text if isinstance(reason, Reason) else "that is not a valid answer"
            ctx.reply(f"{_capital(text_)}. {slot.prompt}")
        refuse.__name__ = "ask_again"
        return refuse

    def give_up_for(slot: Slot) -> Callable[[Context], None]:
        def give_up(ctx: Context) -> None:
            reason = _parse(slot.parse, ctx.text)
            text_ = reason.text if isinstance(reason, Reason) else "that is not a valid answer"
            if slot.give_up == "skip":
                ctx.data.pop(slot.name, None)
                ctx.reply(f"{_capital(text_)}. Skipping this one.")
            else:
                ctx.reply(f"{_capital(text_)}. Too many tries.")
        give_up.__name__ = "give_up"
        return give_up

    def skip_for(slot: Slot) -> Callable[[Context], None]:
        def skip(ctx: Context) -> None:
            ctx.data.pop(slot.name, None)
        skip.__name__ = "skip"
        return skip

    def required(ctx: Context) -> None:
        ctx.reply("This one cannot be skipped.")

    def first_already(ctx: Context) -> None:
        ctx.reply("This is the first question: there is nothing to go back to.")

    def stop_editing(ctx: Context) -> None:
        _book(ctx)["editing"] = False

    def timeout_of(slot: Slot) -> Timeout | None:
        if slot.timeout is None:
            return None
        message = slot.timeout_message

        def time_up(ctx: Context) -> None:
            ctx.data.pop(_BOOK, None)
            ctx.reply(message)
        time_up.__name__ = "time_up"
        warn = None
        if slot.warning is not None:
            warning = slot.warning

            def remind(ctx: Context) -> None:
                ctx.reply(warning)
            remind.__name__ = "remind"
            warn = remind
        return Timeout(slot.timeout, STOP, action=time_up, warn_before=slot.warn_before,
                       warn=warn)

    states: list[State] = []
    for i, slot in enumerate(slots):
        nxt: Target = names[i + 1] if i + 1 < len(slots) else after_slots
        give_up_target: Target = CANCELLED if slot.give_up == "cancel" else nxt
        on: list[On] = []
        # An answer: a message, or here also a confirm/edit word (`yes` may be an answer).
        for event in ("message", "confirm", "edit") if confirm else ("message",):
            if confirm:
                on.append(On(event, CONFIRM, guard=editing_valid_for(slot),
                             action=store_for(slot)))
            on += [
                On(event, nxt, guard=valid_for(slot), action=store_for(slot)),
                On(event, give_up_target, guard=last_try_for(slot), action=give_up_for(slot)),
                On(event, KEEP, action=refuse_for(slot)),
            ]
        if slot.optional:
            if confirm:
                on.append(On("skip", CONFIRM, guard=editing, action=skip_for(slot)))
            on.append(On("skip", nxt, action=skip_for(slot)))
        else:
            on.append(On("skip", KEEP, action=required, reset_timeout=False))
        on.append(On("back", names[i - 1], action=stop_editing) if i > 0
                  else On("back", KEEP, action=first_already, reset_timeout=False))
        states.append(State(slot.name, on=on, enter=ask_for(slot, i == 0),
                            timeout=timeout_of(slot)))

    if confirm:
        def summary(ctx: Context) -> None:
            _book(ctx)["editing"] = False
            lines = [summary_title]
            for slot in slots:
                value = ctx.data.get(slot.name)
                lines.append(f"- {slot.name}: {'(skipped)' if value is None else value}")
            edit_word = words.edit[0] if words.edit else "edit"
            yes = words.confirm[0] if words.confirm else "yes"
            lines.append(f"Send '{yes}' to confirm, '{edit_word} NAME' to change an answer "
                         f"({', '.join(names)}), or 'cancel'.")
            ctx.reply("\n".join(lines))

        def edits(slot: Slot) -> Callable[[Context], bool]:
            def edits_slot(ctx: Context) -> bool:
                parts = ctx.text.split()
                return len(parts) == 2 and parts[1].casefold() == slot.name.casefold()
            edits_slot.__name__ = f"edit {slot.name}"
            return edits_slot

        def start_editing(ctx: Context) -> None:
            _book(ctx)["editing"] = True

        def what_to_edit(ctx: Context) -> None:
            ctx.reply(f"Edit which answer? Send '{(words.edit or ('edit',))[0]} NAME', one of: "
                      f"{', '.join(names)}.")

        def not_understood(ctx: Context) -> None:
            yes = words.confirm[0] if words.confirm else "yes"
            ctx.reply(f"Send '{yes}' to confirm, or '{(words.edit or ('edit',))[0]} NAME'.")

        confirm_on = [
            On("confirm", DONE),
            *[On("edit", slot.name, guard=edits(slot), action=start_editing) for slot in slots],
            On("edit", KEEP, action=what_to_edit, reset_timeout=False),
            On("back", names[-1], action=stop_editing),
            On("message", KEEP, action=not_understood, reset_timeout=False),
            On("skip", KEEP, action=not_understood, reset_timeout=False),
        ]
        states.append(State(CONFIRM, on=confirm_on, enter=summary))

    def finish(ctx: Context) -> None:
        ctx.data.pop(_BOOK, None)
        if done:
            ctx.reply(done)

    def cancel(ctx: Context) -> None:
        ctx.data.pop(_BOOK, None)
        if cancelled:
            ctx.reply(cancelled)

    states.append(State(DONE, final=True, enter=finish))
    states.append(State(CANCELLED, final=True, enter=cancel))
    return Spec(name=name, initial=names[0], states=states,
                any_state=[On("cancel", CANCELLED)], classify=classify, start=start)


def _capital(text_: str) -> str:
    return text_[:1].upper() + text_[1:]


def answers(data: Mapping[str, Any], slots: Iterable[Slot]) -> dict[str, Any]:
    """The slots' values in `data` (what a finished form holds), in slot order."""
    return {s.name: data[s.name] for s in slots if s.name in data}
