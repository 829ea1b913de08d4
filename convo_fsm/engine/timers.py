"""Timers: one heap of deadlines for every session of an engine.

An entry is (due, session id, generation, is_warning, key). A session's id is unique
per start and its generation changes with every change of state or deadline, so an
entry is live exactly when the session now on its key has that id and generation:
older entries are skipped when popped (and compacted away when they pile up), never
searched for. The clock is told when the earliest deadline moves (`Clock.wake`).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping

from convo_fsm.clock import Clock, TimerOwner
from convo_fsm.session import Session

__all__ = ["Entry", "Timers", "live"]

Entry = tuple[float, int, int, bool, str]
# Entries due at one instant are ordered by the session's id (its start), then generation
# (older first) and the timeout before its warning: ints compare faster than the keys (a mass
# expiry compares nothing but equal deadlines), and a key is reached only for a restored id.

_COMPACT_SLACK = 1024


def live(session: Session | None, sid: int, gen: int, warning: bool) -> bool:
    """Whether an entry (id `sid`, generation `gen`, a warning or not) is still due for the
    `session` now on its key: the one rule, for the heap and for a timer that waited."""
    return (session is not None and session.id == sid and session.generation == gen
            and (not warning or session.warn_at is not None))


class Timers:
    __slots__ = ("_clock", "_owner", "_sessions", "garbage", "heap")

    def __init__(self, sessions: Mapping[str, Session], clock: Clock, owner: TimerOwner) -> None:
        self._sessions = sessions
        self._clock = clock
        self._owner = owner
        self.heap: list[Entry] = []
        self.garbage: list[list[Entry]] = []  # outdated heaps, to be freed a slice at a time

    def arm(self, key: str, session: Session) -> None:
        """Schedule the session's deadline and warning (its older entries are outdated)."""
        if session.deadline is None and session.warn_at is None:
            return  # nothing to schedule (its old entries are outdated by the generation)
        heap = self.heap
        sid, gen = session.id, session.generation
        if session.warn_at is not None:
            heapq.heappush(heap, (session.warn_at, sid, gen, True, key))
        if session.deadline is not None:
            heapq.heappush(heap, (session.deadline, sid, gen, False, key))
        if heap:
            first = heap[0]
            if first[1] == sid and first[2] == gen and first[4] == key:
                self._clock.wake(self._owner, first[0])
        if len(heap) > 4 * len(self._sessions) + _COMPACT_SLACK:
            self.compact()

    def compact(self) -> None:
        sessions = self._sessions
        self.heap = [e for e in self.heap if live(sessions.get(e[4]), e[1], e[2], e[3])]
        heapq.heapify(self.heap)

    def next_deadline(self) -> float | None:
        """The earliest live deadline (outdated entries are dropped on the way)."""
        heap, sessions = self.heap, self._sessions
        if not sessions:
            if heap:  # all outdated (after a mass expiry): no million pops in one go, and
                self.garbage.append(heap)  # freed in slices by `sweep`, not in one block
                self.heap = []
            return None
        while heap:
            due, sid, gen, warning, key = heap[0]
            if live(sessions.get(key), sid, gen, warning):
                return due
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> Entry | None:
        """The earliest live entry due at `now`, removed from the heap; None if none is.
        (`next_deadline`'s loop, which it is, with the pop: once per fired timer.)"""
        heap, sessions = self.heap, self._sessions
        if not sessions:
            self.next_deadline()  # (all outdated: to the garbage, freed in slices)
            return None
        pop = heapq.heappop
        while heap:
            entry = heap[0]
            if entry[0] > now:
                return None
            pop(heap)
            if live(sessions.get(entry[4]), entry[1], entry[2], entry[3]):
                return entry
        return None

    async def sweep(self, slice_: int = 20_000) -> None:
        """Free outdated heaps a slice at a time, yielding to the loop between slices."""
        garbage = self.garbage
        while garbage:
            last = garbage[-1]
            del last[-slice_:]
            if not last:
                garbage.pop()
            await asyncio.sleep(0)

    def pending(self) -> int:
        """Live entries (a restarted key may hold an outdated twin: counted once)."""
        sessions = self._sessions
        return len({(e[4], e[3]) for e in self.heap if live(sessions.get(e[4]), *e[1:4])})

    def __len__(self) -> int:
        return len(self.heap)
