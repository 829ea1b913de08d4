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

from collections.abc import Callable, Iterable
from typing import Any

from convo_fsm.compat.astrbot.api.event import filter as command_filter
from convo_fsm.compat.astrbot.runtime import runtime_for
from convo_fsm.engine import SessionExists
from convo_fsm.spec import Spec

__all__ = ["spec_command"]

BUSY_TEXT = "A {spec} session is already running here."


def spec_command(
    name: str,
    spec: Spec,
    *,
    filter: Any = "member",
    alias: Iterable[str] | None = None,
    replace: bool = False,
    data: Callable[[Any], dict[str, Any]] | None = None,
    busy_text: str = BUSY_TEXT,
) -> Callable[..., Any]:
    """A `Star` method answering `/name` by starting `spec` (see the module docstring).

    `filter`: "member" (one session per sender within the chat), "group" (one per chat) or
    a `SessionFilter`. `data(event)` gives the session's initial data. A live session on the
    key that did not take the message: `busy_text` is answered, unless `replace`.
    """
    if not isinstance(spec, Spec):
        raise TypeError(f"spec_command needs a Spec, got {type(spec).__name__}")

    async def handler(self: Any, event: Any) -> None:
        runtime = runtime_for(event)
        try:
            await runtime.start_spec(spec, event, filter=filter, replace=replace,
                                     data=None if data is None else data(event))
        except SessionExists:
            await event.send(event.plain_result(busy_text.format(spec=spec.name)))
        event.stop_event()

    handler.__name__ = handler.__qualname__ = f"start_{name.replace('-', '_')}"
    command_filter.command(name, alias=set(alias) if alias else None)(handler)
    return handler
