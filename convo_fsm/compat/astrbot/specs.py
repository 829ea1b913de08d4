"""Any convo_fsm `Spec` as an AstrBot plugin command.

    class Games(Star):
        quiz = spec_command("quiz", quiz_spec)                  # one session per member
        werewolf = spec_command("werewolf", wolf_spec, filter="group")

`/quiz` starts `quiz_spec` for the sender's chat (its enter action sees the event, as a
`convo_fsm.Message`-like view: `ctx.text`, `ctx.event.sender`, `ctx.event.group`,
`ctx.event.origin` is the AstrBot event); later messages on that key go to the session
before any command, and `ctx.reply` answers in the chat.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from convo_fsm.compat.astrbot.api.event import filter as command_filter
from convo_fsm.compat.astrbot.runtime import EventView, runtime_for
from convo_fsm.engine import SessionExists
from convo_fsm.spec import Spec, StartError

__all__ = ["command_handler", "opening_for", "spec_command"]


def opening_for(spec: Spec, event: Any, filter: Any,
                data: Callable[[Any], dict[str, Any]] | None) -> tuple[dict[str, Any] | None, Any]:
    """The first data and the filter a command starts `spec` with: `data(event)` if given,
    else the spec's own start (`Spec.begin` on the command's arguments, a fresh seed each
    time; `StartError` for bad ones). `filter` None: the kind the spec's start chooses."""
    if data is not None:
        return data(event), filter or "member"
    opening = spec.begin(EventView(event), seed=random.SystemRandom().randrange(2**31))
    return (opening.data if spec.start is not None else None), filter or opening.kind

BUSY_TEXT = "A {spec} session is already running here."


def command_handler(spec: Spec, start: Callable[[Any, Any, dict[str, Any] | None],
                                               Awaitable[None]], *, filter: Any,
                    data: Callable[[Any], dict[str, Any]] | None,
                    busy_text: str) -> Callable[[Any, Any], Awaitable[None]]:
    """The one `spec_command` handler, for the compat layer and for real AstrBot (the
    adapter): the opening (bad arguments answered with the `StartError`), then `start(event,
    filter, data)` on the host; a live session on the key is answered with `busy_text`."""
    if not isinstance(spec, Spec):
        raise TypeError(f"spec_command needs a Spec, got {type(spec).__name__}")

    async def handler(self: Any, event: Any) -> None:
        try:
            first, how = opening_for(spec, event, filter, data)
        except StartError as exc:
            await event.send(event.plain_result(str(exc)))
            event.stop_event()
            return
        try:
            await start(event, how, first)
        except SessionExists:
            await event.send(event.plain_result(busy_text.format(spec=spec.name)))
        event.stop_event()

    return handler


def spec_command(
    name: str,
    spec: Spec,
    *,
    filter: Any = None,
    alias: Iterable[str] | None = None,
    replace: bool = False,
    data: Callable[[Any], dict[str, Any]] | None = None,
    busy_text: str = BUSY_TEXT,
) -> Callable[..., Any]:
    """A `Star` method answering `/name` by starting `spec` (see the module docstring).

    `filter`: "member" (one session per sender within the chat), "group" (one per chat) or
    a `SessionFilter`; by default the kind the spec's `start` declares (else "member").
    `data(event)` gives the session's initial data; by default the spec's `start` parses the
    command's arguments (bad ones are answered with the `StartError`). A live session on the
    key that did not take the message: `busy_text` is answered, unless `replace`.
    """
    async def start(event: Any, how: Any, first: dict[str, Any] | None) -> None:
        await runtime_for(event).start_spec(spec, event, filter=how, replace=replace,
                                            data=first)

    handler = command_handler(spec, start, filter=filter, data=data, busy_text=busy_text)
    handler.__name__ = handler.__qualname__ = f"start_{name.replace('-', '_')}"
    command_filter.command(name, alias=set(alias) if alias else None)(handler)
    return handler
