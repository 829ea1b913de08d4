"""Testing conversations: a tester that reads like the chat, transcripts that replay, and
(in `convo_fsm.testing.hypothesis`) property-based state machines for any spec.

- `ConversationTester(spec)`: start, `say` as named users, `advance` virtual time, read
  replies, state and data.
- `Transcript`: an engine trace hook recording everything as JSON lines; `replay`,
  `areplay` and `assert_replays` re-run one and report the first divergence.
"""

from convo_fsm.clock import VirtualClock
from convo_fsm.testing.tester import ConversationTester, Replies
from convo_fsm.testing.transcript import (
    Divergence,
    ReplayResult,
    Transcript,
    TranscriptError,
    areplay,
    assert_replays,
    replay,
)

__all__ = [
    "ConversationTester",
    "Divergence",
    "ReplayResult",
    "Replies",
    "Transcript",
    "TranscriptError",
    "VirtualClock",
    "areplay",
    "assert_replays",
    "replay",
]
