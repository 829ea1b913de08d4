"""What the engine's parts ask of it: the host side of `Engine`.

The effect interpreter (`effects.Host`), delivery, firing, the store binding and the
clock (`clock.TimerOwner`) call these; `Engine` (`core.py`) is this class plus routing,
starting, stopping, admin changes, introspection and close. Here:

- committing a step's session (and tracing it), and adopting a stored one;
- ending a session (`End`, `stop`, an error): its waiters and `on_end` told, its
  inbox handed back, its running work cut short;
- failures: a step's (its session ends) and the rest's (sends, store writes), logged
  and told to `on_error`;
- replies through `send` (an async `send` runs supervised);
- the clock's side: the earliest deadline, and firing what fell due (`firing.py`).

`current(key)` and `arm(key, session)` are bound in `Engine.__init__` straight to the
sessions dict and the timer heap: the interpreter calls them once or twice per event.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from convo_fsm.clock import Clock
from convo_fsm.context import Reply
from convo_fsm.session import Session
from convo_fsm.step import Arm

from .effects import run
from .supervisor import Supervisor
from .timers import Timers
from .tracing import Tracer
from .turns import Turns

if TYPE_CHECKING:
    from convo_fsm.storage.binding import StoreBinding

    from .firing import Firing

__all__ = ["Ended", "EngineHost"]

logger = logging.getLogger("convo_fsm")


@attrs.frozen
class Ended:
    """How a session ended: `reason` is final, stop, timeout, stopped, error, replaced or closed."""

    session: Session
    reason: str
    error: BaseException | None = None


class EngineHost:
    """The engine's state (set by `Engine.__init__`) and what its parts call on it."""

    __slots__ = ()  # (Engine's instances have a __dict__; this only declares)

    clock: Clock
    current: Callable[[str], Session | None]
    arm: Callable[[str, Session], None]
    _sessions: dict[str, Session]
    _trace: Tracer
    _turns: Turns
    _timers: Timers
    _firing: Firing
    _tasks: Supervisor
    _store: StoreBinding | None
    _end_waiters: dict[str, list[asyncio.Future[Ended]]]
    _on_end: Callable[[Ended], object] | None
    _on_error: Callable[[str, BaseException], object] | None
    _send: Callable[[Reply], object]

    def _commit(self, key: str, session: Session, event: Any, name: str, source: str | None,
                now: float) -> None:
        """Make `session` the key's session (a step's result), and trace it."""
        self._trace.step(key, now, session, event, name, source)
        self._sessions[key] = session

    # -- ending: the interpreter's `End`, a failed step, a failure outside any step --------
    def end(self, key: str, sid: int, reason: str, error: BaseException | None = None) -> bool:
        """End the session `sid` on `key` (False: it is over already, or another lives there)."""
        session = self._sessions.get(key)
        if session is None or session.id != sid:
            return False
        del self._sessions[key]
        self._trace.end(key, session, reason)
        if key in self._turns.busy:
            self._turns.hand_back(key)
        waiters = self._end_waiters.pop(key, None) if self._end_waiters else None
        if waiters is None and self._on_end is None:
            return True
        ended = Ended(session, reason, error)
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(ended)
        if self._on_end is not None:
            try:
                self._on_end(ended)
            except Exception:
                logger.exception("on_end hook failed for %r", key)
        return True

    def fail(self, key: str, sid: int, exc: BaseException, where: str) -> None:
        """A guard, action or commit of session `sid` raised: it ends (reason "error")."""
        logger.error("session %r: %s raised %r; session ended", key, where, exc, exc_info=exc)
        self._tell(key, exc)
        self.end(key, sid, "error", exc)

    def report(self, key: str | None, exc: BaseException, what: str) -> None:
        """A failure outside any session's step (a send, a store write): logged and told to
        `on_error`; no session ends for it."""
        logger.error("%s%s failed: %r", what, "" if key is None else f" for {key!r}", exc,
                     exc_info=exc)
        self._tell(key or "", exc)

    def _tell(self, key: str, exc: BaseException) -> None:
        if self._on_error is not None:
            try:
                self._on_error(key, exc)
            except Exception:
                logger.exception("on_error hook failed for %r", key)

    def adopt(self, session: Session) -> None:
        """Make a stored session live as it is (restore, reload)."""
        self._sessions[session.key] = session
        self._trace.adopt(session.key, session)
        run(self, session.key, session, (Arm(session.deadline, session.warn_at),), None)

    def spawn_write(self, key: str) -> None:
        assert self._store is not None
        self._tasks.spawn(self._store.commit(key), "store write", key)

    def now(self) -> float:
        return self.clock.now()

    # -- replies -------------------------------------------------------------------------------
    def emit(self, reply: Reply) -> None:
        """Send a reply through `send`; an async `send` runs supervised."""
        self._trace.reply(reply.to, reply.event, reply.text)
        result = self._send(reply)
        if result is not None and inspect.isawaitable(result):
            self._tasks.spawn(_awaited(result), "send", reply.to)

    # -- timers --------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """The earliest pending timer."""
        return self._timers.next_deadline()

    async def fire_due(self, now: float) -> int:
        """Fire every timer due at `now`, in deadline order, never waiting for a key
        (`firing.py`). Returns how many were fired (or handed to a task)."""
        return await self._firing.fire_due(now)


async def _awaited(awaitable: Awaitable[Any]) -> None:
    await awaitable
