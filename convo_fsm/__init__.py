"""convo_fsm: multi-turn chat conversations as explicit finite state machines.

Declare a `Spec` (a frozen state table), run it on an `Engine`, feed it events.
The rooms: `spec` (declaration), `step` (pure), `engine` (routing, turns,
timers), `clock` (virtual and asyncio), `message` (messages and filters).
"""

from convo_fsm.clock import AsyncioClock, Clock, VirtualClock
from convo_fsm.context import Context, Reply
from convo_fsm.engine import Ended, Engine, EngineClosed, LimitError, SessionExists, SessionInfo
from convo_fsm.message import DEFAULT_FILTERS, Filter, Message, by_group, by_member, by_sender
from convo_fsm.session import DataError, Session
from convo_fsm.spec import (
    ANY,
    BACK,
    CALL_DEPTH_LIMIT,
    KEEP,
    STOP,
    Busy,
    Call,
    EventError,
    On,
    Opening,
    Spec,
    SpecError,
    Start,
    StartArgs,
    StartError,
    State,
    Target,
    Timeout,
    When,
    classify_text,
)
from convo_fsm.step import Arm, End, Force, Input, Result, Run, TimerFired, new_session, step

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "BACK",
    "CALL_DEPTH_LIMIT",
    "DEFAULT_FILTERS",
    "KEEP",
    "STOP",
    "Arm",
    "AsyncioClock",
    "Busy",
    "Call",
    "Clock",
    "Context",
    "DataError",
    "End",
    "Ended",
    "Engine",
    "EngineClosed",
    "EventError",
    "Filter",
    "Force",
    "Input",
    "LimitError",
    "Message",
    "On",
    "Opening",
    "Reply",
    "Result",
    "Run",
    "Session",
    "SessionExists",
    "SessionInfo",
    "Spec",
    "SpecError",
    "Start",
    "StartArgs",
    "StartError",
    "State",
    "Target",
    "Timeout",
    "TimerFired",
    "VirtualClock",
    "When",
    "__version__",
    "by_group",
    "by_member",
    "by_sender",
    "classify_text",
    "new_session",
    "step",
]
