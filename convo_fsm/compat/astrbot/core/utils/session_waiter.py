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
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from convo_fsm.compat.astrbot.core.message import components as Comp
from convo_fsm.compat.astrbot.core.platform.astr_message_event import AstrMessageEvent
from convo_fsm.compat.astrbot.runtime import (
    EventView,
    WaiterEnded,
    WaiterExists,
    current_runtime,
    runtime_for,
)

if TYPE_CHECKING:
    from convo_fsm.compat.astrbot.runtime import Runtime

__all__ = [
    "FILTERS",
    "USER_SESSIONS",
    "AstrMessageEvent",
    "DefaultSessionFilter",
    "SessionController",
    "SessionFilter",
    "SessionWaiter",
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
    """One session per sender within the chat: in a group, each member has their own.
    With the runtime's `default_key="origin"` (`PluginHost(default_key=...)`,
    `convo_fsm.adapters.astrbot.configure(...)`), one per chat, as AstrBot's code does."""

    def filter(self, event: Any) -> str:
        origin: str = event.unified_msg_origin
        if runtime_for(event).default_key == "origin":
            return origin
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

    @property
    def future(self) -> _Ended:
        """Whether the session is over (`future.done()`), as AstrBot's controller's future
        tells; the outcome is what `await waiter(event)` returns or raises."""
        return _Ended(self)

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


class _Ended:
    __slots__ = ("_controller",)

    def __init__(self, controller: SessionController) -> None:
        self._controller = controller

    def done(self) -> bool:
        return self._controller._token is not None and not self._controller._alive()


class SessionWaiter:
    """One waiting session, as AstrBot's `SessionWaiter`: `session_id` (the filter's
    result), `session_filter`, `session_controller`, `handler`, `record_history_chains`.
    `USER_SESSIONS` maps each live one's `session_id` to it. Made by `session_waiter`; made
    directly, `await waiter.register_wait(handler, timeout)` waits on `session_id`."""

    def __init__(self, session_filter: SessionFilter, session_id: str,
                 record_history_chains: bool) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty str, got {session_id!r}")
        self.session_id = session_id
        self.session_filter = session_filter
        self.record_history_chains = record_history_chains
        self.handler: Handler | None = None
        self.session_controller: SessionController | None = None
        self.key = ""  # the engine key, once registered

    async def register_wait(self, handler: Handler, timeout: float = 30, *,
                            replace: bool = False) -> Any:
        """Register under `session_id` and wait until the session ends (as `await
        waiter(event)` does; a live waiter on the key: `WaiterExists` unless `replace`)."""
        runtime = current_runtime()
        key = f"{runtime.kind_for(self.session_filter)}|{self.session_id}"
        return await runtime.run_waiter(self, handler, timeout, key, None, replace)

    @classmethod
    async def trigger(cls, session_id: str, event: Any) -> None:
        """Give `event` to the live waiter on `session_id` (if any), as AstrBot's does."""
        runtime = runtime_for(event)
        waiter = runtime.user_sessions.get(session_id)
        if waiter is not None:
            await runtime.engine.deliver(waiter.key, EventView(event))

    def __repr__(self) -> str:
        return f"<SessionWaiter {self.session_id!r}>"


class _UserSessions(Mapping[str, SessionWaiter]):
    """AstrBot's `USER_SESSIONS` as a live, read-only view: session id (the filter's
    result) -> the `SessionWaiter` waiting on it, for the current runtime (the running
    `PluginHost`'s, else the process-wide one). `pop(id)` stops that waiter and returns it."""

    def _map(self) -> dict[str, SessionWaiter]:
        return current_runtime().user_sessions

    def __getitem__(self, key: str) -> SessionWaiter:
        return self._map()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._map()))

    def __len__(self) -> int:
        return len(self._map())

    def pop(self, key: str, default: Any = None) -> Any:
        waiter = self._map().get(key)
        if waiter is None:
            return default
        if waiter.session_controller is not None:
            waiter.session_controller.stop()
        return waiter

    def __repr__(self) -> str:
        return f"USER_SESSIONS({dict(self._map())!r})"


class _Filters(Sequence[SessionFilter]):
    """AstrBot's `FILTERS` as a live, read-only view: the filter instances keying live
    waiting sessions (each once, however many sessions it keys)."""

    def __getitem__(self, index: Any) -> Any:
        return current_runtime().live_filters()[index]

    def __len__(self) -> int:
        return len(current_runtime().live_filters())

    def __repr__(self) -> str:
        return f"FILTERS({current_runtime().live_filters()!r})"


USER_SESSIONS: Mapping[str, SessionWaiter] = _UserSessions()
FILTERS: Sequence[SessionFilter] = _Filters()


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
