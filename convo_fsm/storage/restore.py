"""What to do with one stored session at start-up: a pure decision, performed by
`Engine.restore`.

A stored session is one of:
- still valid (its state exists): it comes back as it was, deadline included;
  a deadline that passed while the process was down fires at once, in deadline
  order with the others, unless the spec's `Policy.discard_after` says it is too old;
- in a state the current spec no longer has (a new version of the bot): the
  spec's `Policy` maps it to a new state (`rename`), or starts the spec again
  (`reset`), or ends it with a message to the key (`end`).
Nothing here raises for a bad record: the worst a record can get is "drop".
"""

from __future__ import annotations

from typing import Literal

import attrs

from convo_fsm.session import Session
from convo_fsm.spec import Spec
from convo_fsm.storage.base import Policy, Stored, fingerprint

__all__ = ["Decision", "decide"]

Kind = Literal["keep", "moved", "drop", "end", "reset"]


@attrs.frozen
class Decision:
    """`keep`/`moved`: make `session` live (`moved`: it changed, write it back);
    `drop`: delete it; `end`: delete it and send `message`; `reset`: delete it and
    start the spec again on the key with `session.data`. `why` is for the log."""

    kind: Kind
    session: Session
    why: str
    message: str | None = None


def decide(spec: Spec, stored: Stored, policy: Policy, now: float) -> Decision:
    session = stored.session
    same = stored.fingerprint == fingerprint(spec)
    state = spec.by_name.get(session.state)
    if state is None:
        new_name = policy.rename.get(session.state)
        if new_name is not None and new_name in spec.by_name:
            new = spec.by_name[new_name]
            if new.final:
                return Decision("drop", session, f"state {session.state!r} was renamed to "
                                f"final state {new_name!r}")
            # Like Engine.force (no actions run), from a state `step` cannot look up any more.
            timeout = new.timeout
            deadline = None if timeout is None else now + timeout.after
            warn_at = (None if deadline is None or timeout is None or timeout.warn_before is None
                       else deadline - timeout.warn_before)
            history = (*session.history[1 - spec.history_limit:], new_name) \
                if spec.history_limit > 1 else (new_name,)
            moved = session._replace(state=new_name, deadline=deadline, warn_at=warn_at,
                                     generation=session.generation + 1, history=history,
                                     updated=now)
            return Decision("moved", moved, f"state {session.state!r} renamed to {new_name!r}")
        why = f"spec {spec.name!r} has no state {session.state!r} any more"
        if policy.on_missing == "reset":
            return Decision("reset", session, why)
        return Decision("end", session, why, policy.end_message)
    if state.final:
        return Decision("drop", session, f"state {state.name!r} is final in this version")
    if not same and state.timeout is None and (session.deadline or session.warn_at) is not None:
        # The new version dropped this state's timeout: do not fire the old one.
        return Decision("moved", session._replace(deadline=None, warn_at=None,
                                                  generation=session.generation + 1),
                        f"state {state.name!r} has no timeout in this version")
    if (policy.discard_after is not None and session.deadline is not None
            and now - session.deadline > policy.discard_after):
        return Decision("drop", session, f"its timeout fell due {now - session.deadline:g} s "
                        f"ago, more than the policy's {policy.discard_after:g} s")
    return Decision("keep", session, "")
