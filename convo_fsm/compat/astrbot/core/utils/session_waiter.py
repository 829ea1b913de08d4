"""`astrbot.core.utils.session_waiter` on convo_fsm: AstrBot's session control, run by the
convo_fsm engine.

    @session_waiter(timeout=60, record_history_chains=False)
    async def waiter(controller: SessionController, event: AstrMessageEvent) -> None: ...

    await waiter(event)                          # per sender within the chat
    await waiter(event, session_filter=Custom()) # keyed by Custom().filter(event)

`await waiter(event)` keys the session with the filter, starts it, calls
`controller.keep(timeout, reset_timeout=True)` and suspends until it ends: `None` after
`stop()`, `TimeoutError` on timeout, the handler's exception (or `stop(error)`'s) re-raised.
The start event is not given to the handler; each later event on the key is, one at a time,
before any command or other handler sees it.

What differs from AstrBot 4.29.3, on purpose (its bugs):
1. `DefaultSessionFilter` keys by sender *within* the chat, as AstrBot's docs promise (its
   code keys by chat, so in a group every member's messages went to one session).
2. A second waiter on a live key is refused with `WaiterExists` (catchable); with
   `session_waiter(..., replace=True)` it takes the key over and the older one's `await`
   raises `WaiterEnded("replaced")`. The end of an older waiter never removes a newer one.
3. An event queued for a session that ends before its turn goes back to normal handling.
4. Timeout and `stop()` cancel a handler still running; `keep()` on an ended session does
   nothing.
5. No timer or task per session: deadlines sit in the engine's one heap.
6. Routing costs one dict lookup per filter *class*, not a loop over waiting sessions.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from convo_fsm.compat.astrbot.api import message_components as Comp
from convo_fsm.compat.astrbot.runtime import WaiterEnded, WaiterExists, runtime_for

if TYPE_CHECKING:
    from convo_fsm.compat.astrbot.runtime import Runtime

__all__ = [
    "DefaultSessionFilter",
    "SessionController",
    "SessionFilter",
    "WaiterEnded",
    "WaiterExists",
    "session_waiter",
]


class SessionFilter(abc.ABC):
    """Decides a session's key: `filter(event) -> str`.

    Routing calls one instance per filter class (and attribute values), so the key must
    depend only on the event and those attributes, as every filter in AstrBot's docs does.
    """

    @abc.abstractmethod
    def filter(self, event: Any) -> str:
        """The session key for `event`."""


class DefaultSessionFilter(SessionFilter):
    """One session per sender within the chat: in a group, each member has their own."""

    def filter(self, event: Any) -> str:
        origin: str = event.unified_msg_origin
        group = event.get_group_id()
        return f"{origin}:{event.get_sender_id()}" if group else origin


class SessionController:
    """Handed to the waiter's handler: `keep`, `stop`, `get_history_chains`."""

    def __init__(self, runtime: Runtime, key: str, record_history_chains: bool) -> None:
        self._runtime = runtime
        self.key = key
        self.record_history_chains = record_history_chains
        self.history_chains: list[list[Comp.BaseMessageComponent]] = []
        self.error: BaseException | None = None
        self.ts: float | None = None
        """When the last keep() ran (engine clock)."""
        self.timeout: float | None = None
        """The timeout the last keep() set, counted from `ts`."""
        self._token: dict[str, Any] | None = None

    def _bind(self, token: dict[str, Any]) -> None:
        self._token = token

    def _alive(self) -> bool:
        session = self._runtime.engine.session(self.key)
        return session is not None and session.data is self._token

    def keep(self, timeout: float = 0, reset_timeout: bool = False) -> None:
        """Keep the session alive.

        `reset_timeout=True`: the session now times out `timeout` seconds from now; a
        `timeout <= 0` ends it (as `stop()`). `reset_timeout=False`: the new timeout is what
        was left of the previous one plus `timeout` (which may be negative), from now; if
        that is `<= 0` the session ends. Does nothing once the session has ended.
        """
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise TypeError(f"keep() timeout must be a number, got {timeout!r}")
        if not self._alive():
            return
        now = self._runtime.engine.clock.now()
        if not reset_timeout:
            assert self.ts is not None and self.timeout is not None
            timeout = self.timeout - (now - self.ts) + timeout
        if timeout <= 0:
            self.stop()
            return
        self.ts, self.timeout = now, timeout
        self._runtime.engine.set_deadline(self.key, now + timeout)

    def stop(self, error: BaseException | None = None) -> None:
        """End the session now; with `error`, `await waiter(event)` raises it. A handler
        still running for an earlier event is cancelled (the calling one finishes)."""
        if self._alive():
            self.error = error
            self._runtime.engine.stop(self.key, "stopped")

    def _stop_quietly(self) -> None:
        if self._alive():
            self._runtime.engine.stop(self.key, "cancelled")

    def get_history_chains(self) -> list[list[Comp.BaseMessageComponent]]:
        """Deep copies of the chains delivered to the handler (with
        `record_history_chains=True`); the start event is not among them."""
        return self.history_chains


Handler = Callable[[SessionController, Any], Awaitable[Any]]
H = TypeVar("H", bound=Handler)


def session_waiter(
    timeout: float = 30, record_history_chains: bool = False, *, replace: bool = False
) -> Callable[[Handler], Callable[..., Awaitable[Any]]]:
    """Make `handler(controller, event)` a session waiter (see the module docstring)."""
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(f"session_waiter timeout must be a number, got {timeout!r}")

    def decorate(handler: Handler) -> Callable[..., Awaitable[Any]]:
        if not callable(handler):
            raise TypeError(f"session_waiter decorates an async function, got {handler!r}")

        @functools.wraps(handler)
        async def wrapper(event: Any, session_filter: SessionFilter | None = None,
                          *args: Any, **kwargs: Any) -> Any:
            if session_filter is None:
                session_filter = DefaultSessionFilter()
            if not isinstance(session_filter, SessionFilter):
                raise ValueError(
                    f"session_filter must be a SessionFilter, got {type(session_filter).__name__}")
            return await runtime_for(event).wait(handler, event, session_filter, timeout,
                                                 record_history_chains, replace)

        return wrapper

    return decorate
