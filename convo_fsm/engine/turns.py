"""Turns: one event at a time per key.

A key is *busy* while something holds its turn (an event's guards and actions, a
start, a timer, a store write). A busy key has an inbox of waiters; it exists only
while the key is busy. `take` waits for the turn (in order; timers go to the front),
`release` hands it to the next waiter or frees the key.

`wait` awaits an async guard or action so that the engine can cut it short: like
`asyncio.timeout`, `interrupt` cancels the waiting task and `wait` takes that
cancellation back (`Task.uncancel`) and raises `Interrupted` instead, so no task is
created per action. A cancellation from elsewhere (the caller's) goes on as one; a
`CancelledError` the action raises by itself, with nobody cancelling it, is an error
of that action (`ActionCancelled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["ActionCancelled", "Interrupted", "Turn", "Turns"]


class Interrupted(BaseException):
    """The awaited guard or action was cut short by the engine (a timeout, `stop`, a newer
    event under `Busy.INTERRUPT`). A BaseException, so `except Exception` in a guard's
    caller does not take it for the guard's own error."""


class ActionCancelled(Exception):
    """An async guard or action raised `CancelledError` while nobody was cancelling it."""


class Turn:
    """A busy key: its waiters and the task awaiting a guard or action, if any."""

    __slots__ = ("cancel_requested", "cancelling", "inbox", "task")

    def __init__(self) -> None:
        # (future, wants_session): events want their session; starts and timers the turn.
        # Made on the first waiter: most turns are taken and released with nobody waiting.
        self.inbox: deque[tuple[asyncio.Future[bool], bool]] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.cancel_requested = False
        self.cancelling = 0

    def waiting(self) -> int:
        return 0 if self.inbox is None else len(self.inbox)


class Turns:
    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy: dict[str, Turn] = {}

    def take_free(self, key: str) -> Turn:
        """The turn of a key known to be free."""
        turn = self.busy[key] = Turn()
        return turn

    def reserve(self, key: str, turn: Turn, *, wants_session: bool,
                front: bool = False) -> asyncio.Future[bool]:
        """A place in the busy key's inbox, now: `take(..., place=)` waits on it."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if turn.inbox is None:
            turn.inbox = deque()
        if front:
            turn.inbox.appendleft((fut, wants_session))
        else:
            turn.inbox.append((fut, wants_session))
        return fut

    async def take(self, key: str, *, wants_session: bool, front: bool = False,
                   place: asyncio.Future[bool] | None = None) -> Turn | None:
        """Wait for the key's turn (on a `place` reserved earlier, if given). None: an event
        whose session ended while it waited (hand it back)."""
        turn = self.busy.get(key)
        if turn is None:
            return self.take_free(key)
        fut = place if place is not None else self.reserve(
            key, turn, wants_session=wants_session, front=front)
        try:
            granted = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release(key, turn)  # we were handed the turn as we were cancelled
            else:
                with contextlib.suppress(ValueError, AttributeError):  # free its place
                    turn.inbox.remove((fut, wants_session))  # type: ignore[union-attr]
            raise
        return turn if granted else None

    def release(self, key: str, turn: Turn) -> None:
        inbox = turn.inbox
        while inbox:  # (None or empty: nobody waits)
            fut, _ = inbox.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        if self.busy.get(key) is turn:
            del self.busy[key]

    def hand_back(self, key: str) -> None:
        """The key's session ended: the events waiting for it are handed back (their
        `dispatch` returns False, never swallowed), and its running work is cut short.
        Starts and timers keep their places."""
        turn = self.busy.get(key)
        if turn is None:
            return
        kept: deque[tuple[asyncio.Future[bool], bool]] = deque()
        for fut, wants_session in turn.inbox or ():
            if not wants_session:
                kept.append((fut, wants_session))
            elif not fut.done():
                fut.set_result(False)
        turn.inbox = kept
        self.interrupt(turn)

    @staticmethod
    def interrupt(turn: Turn) -> None:
        task = turn.task
        if task is not None and task is not current_task() and not turn.cancel_requested:
            turn.cancel_requested = True
            task.cancel()

    @staticmethod
    async def wait(awaitable: Awaitable[Any], turn: Turn | None) -> Any:
        """Await a guard's or action's `awaitable`, interruptibly when it holds `turn`."""
        task = current_task()
        if turn is None or task is None:
            return await awaitable
        turn.task, turn.cancelling = task, task.cancelling()
        try:
            return await awaitable
        except asyncio.CancelledError:
            raise judge(turn, task) from None
        finally:
            done(turn, task)


# The rule of an interruptible await, in two parts, so that `effects.finish` (the per-event
# path) can await an action with no extra coroutine between: set `turn.task` and
# `turn.cancelling` before, then on CancelledError `raise judge(...)`, finally `done(...)`.
def judge(turn: Turn, task: asyncio.Task[Any]) -> BaseException:
    """What a CancelledError out of the awaited guard or action means: `Interrupted` (the
    engine's own cut), the CancelledError again (the caller is being cancelled), or
    `ActionCancelled` (nobody cancelled: the action raised it by itself)."""
    if turn.cancel_requested and task.uncancel() <= turn.cancelling:
        turn.cancel_requested = False
        return Interrupted()
    if task.cancelling() > turn.cancelling:
        return asyncio.CancelledError()
    return ActionCancelled("raised CancelledError without being cancelled")


def done(turn: Turn, task: asyncio.Task[Any]) -> None:
    turn.task = None
    if turn.cancel_requested:  # it swallowed our CancelledError and returned
        turn.cancel_requested = False
        task.uncancel()


def _current_task_lookup() -> Callable[[], asyncio.Task[Any] | None]:
    """`asyncio.current_task`, or on Pythons where it is written in Python (3.11) the same
    lookup without its frame: it runs once per delivered event."""
    found = asyncio.current_task
    tasks = getattr(asyncio.tasks, "_current_tasks", None)
    running = getattr(asyncio.events, "_get_running_loop", None)
    if inspect.isbuiltin(found) or not isinstance(tasks, dict) or running is None:
        return found
    get = tasks.get

    def current_task() -> asyncio.Task[Any] | None:
        return get(running())

    return current_task


current_task = _current_task_lookup()
