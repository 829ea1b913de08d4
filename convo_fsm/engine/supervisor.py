"""The supervisor: every piece of background work the engine starts (an async `send`, a
timer waiting for a busy key, a slow timer action, a store write outside a turn) runs
as a task it holds. A failure is reported (to `on_error` and the log), never left as
asyncio's "Task exception was never retrieved"; `close()` cancels what is left and
waits for it, so nothing outlives the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Supervisor"]


class Supervisor:
    def __init__(self, report: Callable[[str | None, BaseException, str], None]) -> None:
        self._report = report
        self._tasks: dict[asyncio.Task[Any], tuple[str | None, str]] = {}

    def spawn(self, work: Coroutine[Any, Any, Any], what: str,
              key: str | None = None) -> asyncio.Task[Any]:
        """Run `work` as a supervised task; `what` and `key` name it in a failure report."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[task] = (key, what)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        key, what = self._tasks.pop(task, (None, "task"))
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._report(key, exc, what)

    def __len__(self) -> int:
        return len(self._tasks)

    async def join(self, what: str) -> None:
        """Wait (without cancelling) until no task named `what` is running."""
        while tasks := [t for t, (_, w) in self._tasks.items() if w == what]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel every task still running and wait until all have finished."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
