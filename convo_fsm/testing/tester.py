"""`ConversationTester`: drive a spec as named users, move virtual time, check what it said.

    t = ConversationTester(quiz)
    assert await t.start("alice") == ["What is 6 x 7?"]
    assert await t.say("alice", "41") == ["No, try again."]
    assert await t.advance(20) == ["10 s left"]
    assert t.state("alice") == "asking"

Every call returns the texts the conversation sent while it ran (to anyone), so a test reads
like the chat. Time is a `VirtualClock`: `advance` fires due timers at exactly their deadline,
instantly. Everything the engine does is recorded in `transcript` (save it, replay it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convo_fsm.clock import VirtualClock
from convo_fsm.context import Reply
from convo_fsm.engine import Ended, Engine
from convo_fsm.message import Filter, Message
from convo_fsm.session import Session
from convo_fsm.spec import Spec
from convo_fsm.testing.transcript import Transcript

__all__ = ["ConversationTester", "Replies"]


class Replies(list[str]):
    """Reply texts (a list), plus whether the event that caused them was `consumed`."""

    consumed: bool = True


class ConversationTester:
    """One engine on a virtual clock, one spec, users by name.

    A session starts the way the spec declares (`Spec.start`): the start text's arguments
    (`/start 1-1000 10`) parsed into its first data, keyed by the declared kind; `seed` is
    the first start's seed (each later start gets the next one). `kind` is the engine filter
    that keys sessions when the spec does not choose ("member": one per user, per chat;
    "group": one per chat). `filters` replaces the engine's filters if given.
    """

    def __init__(self, spec: Spec, *, kind: str | None = None, platform: str = "local",
                 start: float = 0.0, filters: Mapping[str, Filter] | None = None,
                 seed: int = 0) -> None:
        if not isinstance(spec, Spec):
            raise TypeError(f"ConversationTester needs a Spec, got {type(spec).__name__}")
        self.spec = spec
        declared = spec.start.kind if spec.start is not None else None
        self.kind = kind or (declared if isinstance(declared, str) else "member")
        self.seed = seed
        self.started = 0
        self._kinds: dict[tuple[str, str | None], str] = {}
        self.platform = platform
        self.clock = VirtualClock(start)
        self.transcript = Transcript()
        self.sent: list[Reply] = []
        self.endings: list[Ended] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.engine = Engine(clock=self.clock, filters=filters, send=self.sent.append,
                             on_end=self.endings.append,
                             on_error=lambda key, exc: self.errors.append((key, exc)),
                             trace=self.transcript)

    # -- who is who ------------------------------------------------------------------------
    def message(self, user: str, text: str, group: str | None = None) -> Message:
        return Message(text, sender=user, group=group, platform=self.platform)

    def key(self, user: str, group: str | None = None, kind: str | None = None) -> str:
        """The session key `user` (in `group`) has under filter `kind` (default: the kind the
        spec chose at their last start, else the tester's)."""
        kind = kind or self._kinds.get((user, group), self.kind)
        return self.engine.key(kind, self.message(user, "", group))

    # -- acting ----------------------------------------------------------------------------
    async def start(self, user: str, text: str = "/start", *, group: str | None = None,
                    data: Mapping[str, Any] | None = None, kind: str | None = None,
                    replace: bool = False) -> Replies:
        """Start the spec for `user` (their start message is `text`, whose arguments the
        spec's `start` parses: `StartError` if they are bad); the replies it sent. `data`
        skips the parsing and starts with that data."""
        mark = len(self.sent)
        event = self.message(user, text, group)
        chosen = None
        if data is None:
            opening = self.spec.begin(event, seed=self.seed + self.started)
            data = opening.data
            if kind is None and self.spec.start is not None:
                chosen = kind = opening.kind
        key = self.key(user, group, kind)
        await self.engine.start(self.spec, key, data=data, event=event, replace=replace)
        self.started += 1
        if chosen is not None:  # later calls for this user find the session the spec keyed
            self._kinds[(user, group)] = chosen
        return self._since(mark, True)

    async def say(self, user: str, text: str, *, group: str | None = None) -> Replies:
        """`user` sends `text` (in `group`); the replies it caused (`.consumed`: whether a
        session took the message at all)."""
        return await self.send(self.message(user, text, group))

    async def send(self, event: Any) -> Replies:
        """Dispatch any raw event, as a host would."""
        mark = len(self.sent)
        consumed = await self.engine.dispatch(event)
        return self._since(mark, consumed)

    async def advance(self, seconds: float) -> Replies:
        """Let `seconds` of virtual time pass; the replies timers caused."""
        mark = len(self.sent)
        await self.clock.advance(seconds)
        return self._since(mark, True)

    def stop(self, user: str, group: str | None = None, reason: str = "stopped") -> bool:
        return self.engine.stop(self.key(user, group), reason)

    def force(self, user: str, state: str, group: str | None = None) -> Session:
        return self.engine.force(self.key(user, group), state)

    async def close(self) -> None:
        await self.engine.close()

    # -- looking ---------------------------------------------------------------------------
    def session(self, user: str, group: str | None = None) -> Session | None:
        return self.engine.session(self.key(user, group))

    def state(self, user: str, group: str | None = None) -> str | None:
        """The user's current state, None when they have no live session."""
        session = self.session(user, group)
        return None if session is None else session.state

    def data(self, user: str, group: str | None = None) -> dict[str, Any]:
        session = self.session(user, group)
        if session is None:
            raise LookupError(f"{user!r} has no live {self.spec.name!r} session")
        return session.data

    def ended(self, user: str, group: str | None = None) -> Ended | None:
        """How the user's last session ended (None if none has)."""
        key = self.key(user, group)
        return next((e for e in reversed(self.endings) if e.session.key == key), None)

    def inbox(self, user: str, group: str | None = None) -> list[str]:
        """Every text sent to the user's key so far."""
        key = self.key(user, group)
        return [r.text for r in self.sent if r.to == key]

    def _since(self, mark: int, consumed: bool) -> Replies:
        out = Replies(r.text for r in self.sent[mark:])
        out.consumed = consumed
        return out
