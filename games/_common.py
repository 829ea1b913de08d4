"""Small helpers every game uses: command words and who is speaking.

Nothing here decides a rule; the rules stay in each game's module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from convo_fsm import Context, classify_text

__all__ = ["as_int", "classifier", "plural", "speaker"]


def classifier(words: Mapping[str, str]) -> Callable[[Any], str]:
    """A classifier: `/cmd` -> `cmd`, a plain text equal to one of `words` (case-insensitive,
    spaces trimmed) -> its event name, any other text -> `message`. `/提示` works like `提示`."""
    table = {word.lower(): name for word, name in words.items()}

    def classify(event: Any) -> str:
        name = classify_text(event)
        if name != "message":
            return table.get(name, name)
        text = event if isinstance(event, str) else event.text
        return table.get(" ".join(text.split()).lower(), "message")

    return classify


def speaker(ctx: Context) -> str:
    """Who sent the event (`Message.sender`); "player" for events without a sender."""
    sender = getattr(ctx.event, "sender", None)
    return sender if isinstance(sender, str) and sender else "player"


def as_int(text: str) -> int | None:
    """The integer a message states (ASCII or full-width digits, optional sign), else None."""
    text = text.strip()
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isdecimal() or len(digits) > 18:
        return None
    return int(text)


def plural(n: int, word: str) -> str:
    """`1 attempt`, `2 attempts`."""
    return f"{n} {word}{'' if n == 1 else 's'}"
