"""The engine and its named parts.

- `core`: `Engine` (routing, starting, stopping, admin changes, introspection); its
  docstring is the map of how an event flows;
- `host`: what the parts ask of the engine (commit, end, fail, replies, the clock's side);
- `delivery`: what happens to an event once routed to its key;
- `turns`: one event at a time per key, and interruptible awaits;
- `timers`: the one heap of deadlines; `firing`: what a due timer does;
- `effects`: the effect interpreter, the one place a step's effects are performed;
- `tracing`: the `trace` hook's records (a null tracer when none is given);
- `supervisor`: every background task, reported and closed.
The store binding is `convo_fsm.storage.binding` (imported only for an engine with a store).
"""

from convo_fsm.engine.core import (
    Ended,
    Engine,
    EngineClosed,
    LimitError,
    SessionExists,
    SessionInfo,
)
from convo_fsm.engine.tracing import TraceRecord

__all__ = ["Ended", "Engine", "EngineClosed", "LimitError", "SessionExists", "SessionInfo",
           "TraceRecord"]
