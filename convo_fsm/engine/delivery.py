"""Delivery: what the engine does with an event once routed to its key.

`Engine.dispatch` (or `deliver`) names the key; from there, in order:

1. the key's turn (`turns.py`): one event at a time per key. A busy key's later events
   wait in its inbox, by the spec's `busy` policy (queue, drop with the busy reply, or
   interrupt the running action); a full inbox hands the event back (`None`: the caller
   must give it to no other session);
2. the spec classifies the event and its compiled table gives the candidates; the guard
   rule (`step.pick`, and `step.achoose` from the first async guard on, interruptible)
   chooses one, or none (handed back: `False`);
3. `step` gives the new session and effects; the session is committed (and traced) and
   the effect interpreter (`effects.py`) performs the effects: a step whose guards and
   actions are all synchronous awaits nothing;
4. with a store, the step is committed there before the event is reported consumed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from convo_fsm.context import Context, Reply
from convo_fsm.session import Session
from convo_fsm.spec import ANY, Busy, EventError, Spec
from convo_fsm.step import GuardFailed, Input, achoose, pick, step

from .effects import finish, run
from .turns import Interrupted, Turn, Turns, current_task

if TYPE_CHECKING:
    from convo_fsm.storage.binding import StoreBinding

    from .core import Engine
    from .tracing import Tracer

__all__ = ["Delivery"]

logger = logging.getLogger("convo_fsm")

_new = tuple.__new__  # a named tuple built without its Python-level __new__ (see step.py)


def _classify_error(spec: Spec, event: Any, exc: Exception) -> EventError:
    return EventError(f"spec {spec.name!r} cannot classify {type(event).__name__} event "
                      f"{event!r}: {exc}")


class Delivery:
    # The engine's parts, held directly: this is the per-event path.
    __slots__ = ("_clock", "_engine", "_sessions", "_specs", "_store", "_trace", "_turns")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions: dict[str, Session] = engine._sessions
        self._specs: dict[str, Spec] = engine._specs
        self._turns: Turns = engine._turns
        self._trace: Tracer = engine._trace
        self._store: StoreBinding | None = engine._store
        self._clock = engine.clock

    async def apply(self, key: str, event: Any) -> bool | None:
        """True: consumed; False: not wanted; None: the key's inbox is full (handed back,
        and no other session may take it)."""
        trace = self._trace
        engine = self._engine
        trace.event(key, event)
        sessions = self._sessions
        session = sessions.get(key)
        if session is None:
            trace.result(key, event, False)
            return False
        turns = self._turns
        turn = turns.busy.get(key)
        if turn is None:
            turn = turns.busy[key] = Turn()
        else:
            got = await self._queue(key, event, session, turn)
            if not isinstance(got, Turn):
                trace.result(key, event, got is True)
                return got
            turn = got
        consumed = False
        try:
            while True:  # again if an async guard let the session change meanwhile
                session = sessions.get(key)
                if session is None:
                    break
                spec = self._specs[session.spec]
                try:
                    name = spec.classify(event)
                except EventError:
                    raise
                except Exception as exc:
                    raise _classify_error(spec, event, exc) from exc
                table = spec.tables[session.state]  # (Spec.lookup, inline: the hot path)
                candidates = table.get(name)
                if candidates is None:
                    candidates = table[ANY]
                if not candidates:
                    break
                now = self._clock.now()
                ctx = Context(session, event, name, now, engine.emit)
                t = candidates[0]
                if t.guard is not None:
                    try:
                        chosen, pending_guard, at = pick(candidates, ctx)
                        if pending_guard is not None:  # an async guard: the only await
                            chosen = await achoose(candidates, ctx,
                                                   lambda aw: Turns.wait(aw, turn),
                                                   start=at, pending=pending_guard)
                            if chosen is not None and sessions.get(key) is not session:
                                continue  # time passed and the session changed: again
                    except GuardFailed as failed:
                        engine.fail(key, session.id, failed.error, f"guard {failed.on.guard_name}")
                        consumed = True
                        break
                    except Interrupted:
                        break  # a timeout or stop cut the guard short: handed back
                    if chosen is None:
                        break
                    t = chosen
                result = step(spec, session, _new(Input, (name, event, t)), now)
                if not result.handled:  # (a sub-conversation's levels all declined it)
                    break
                new = ctx.session = result.session
                engine._commit(key, new, event, name, session.state, now)
                pending = run(engine, key, new, result.effects, ctx)
                if pending is not None:
                    await finish(engine, key, new, result.effects, ctx, turn, pending)
                consumed = True
                break
            if consumed and self._store is not None:
                await self._store.commit(key)
        finally:
            turns.release(key, turn)
        trace.result(key, event, consumed)
        return consumed

    async def _queue(self, key: str, event: Any, session: Session,
                     turn: Turn) -> Turn | bool | None:
        """An event for a busy key, by the spec's busy policy: the turn once it comes, or
        the event's answer: True, dropped with the busy reply (consumed); False, its session
        ended meanwhile (handed back); None, the inbox is full (handed back)."""
        if turn.task is current_task():
            raise RuntimeError(f"an action of {key!r} cannot deliver to its own key: "
                               "it would wait for itself")
        spec = self._specs[session.spec]
        if spec.busy is Busy.DROP:
            self._engine.emit(Reply(key, spec.busy_reply, event))
            return True
        if turn.waiting() >= spec.queue_limit:
            logger.warning("inbox of %r is full (%d): event handed back", key, spec.queue_limit)
            return None
        if spec.busy is Busy.INTERRUPT:
            self._turns.interrupt(turn)
        held = await self._turns.take(key, wants_session=True)
        return False if held is None else held
