"""What guards and actions see: the event, the session's data and key, and ways to answer.

A `Context` never exposes the engine. `reply` answers the session's key,
`send` writes to any other key (for example a group game telling a player).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from convo_fsm.session import Session

__all__ = ["Context", "Reply"]


@attrs.frozen
class Reply:
    """A text the conversation sends: to a key, caused by `event` (None for timers)."""

    to: str
    text: str
    event: Any = None


def _no_outlet(reply: Reply) -> None:
    raise RuntimeError(f"cannot send {reply.text!r} from here: guards only decide, actions reply")


class Context:
    """Handed to every guard and action. `data` is the session's own dict: change it in place."""

    __slots__ = ("_outlet", "event", "name", "now", "session")

    def __init__(
        self,
        session: Session,
        event: Any,
        name: str,
        now: float,
        outlet: Callable[[Reply], None] = _no_outlet,
    ) -> None:
        self.session = session
        self.event = event
        self.name = name
        self.now = now
        self._outlet = outlet

    @property
    def key(self) -> str:
        return self.session.key

    @property
    def state(self) -> str:
        return self.session.state

    @property
    def data(self) -> dict[str, Any]:
        return self.session.data

    @property
    def text(self) -> str:
        """The event's text (`str` events, or events with a `text` attribute), else ''."""
        ev = self.event
        text = ev if isinstance(ev, str) else getattr(ev, "text", "")
        return text if isinstance(text, str) else ""

    def reply(self, text: str) -> None:
        """Answer the session's key."""
        self._outlet(Reply(self.session.key, str(text), self.event))

    def send(self, to: str, text: str) -> None:
        """Send `text` to another key (a player, a group)."""
        self._outlet(Reply(to, str(text), self.event))

    def __repr__(self) -> str:
        return f"<Context {self.session.key!r} in {self.session.state!r} on {self.name!r}>"
