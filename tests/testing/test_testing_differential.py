"""Differential test: for random specs without actions, our pure step and a
`transitions.Machine` built from the same table agree on the state after every event.

The Machine is built by `convo_fsm.interop.transitions.to_transitions`, the exporter users
of transitions' tooling get: every state's candidates in our precedence order (a state's own
transitions for an event, else the any-state ones for it; then the state's wildcard, then
the any-state wildcard), which transitions then tries in order (the first whose conditions
pass wins); timeouts (guarded branches too) as the TIMEOUT trigger.
"""

from __future__ import annotations

from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine

from convo_fsm import Message, Spec
from convo_fsm.context import Context
from convo_fsm.interop.transitions import OTHER, STOPPED, TIMEOUT, to_transitions
from convo_fsm.step import End, Input, TimerFired, new_session, step
from convo_fsm.testing.hypothesis import specs


def machine_for(spec: Spec) -> Machine:
    return Machine(**to_transitions(spec, timeouts=False))


events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "next", "help", "exit", "zzz", TIMEOUT]),
              st.sampled_from(["", "x", "12", "hello", "7"])),
    max_size=30)


@given(spec=specs(actions=False, policies=False, back=False, calls=False), seq=events)
@settings(max_examples=examples(1000), deadline=None)
def test_our_step_and_transitions_agree(spec: Spec, seq: list[tuple[str, str]]) -> None:
    machine = machine_for(spec)
    now = 0.0
    started = new_session(spec, "k", now)
    session = started.session
    ended = any(isinstance(e, End) for e in started.effects)
    assert machine.state == session.state
    for name, text in seq:
        if ended:
            break
        now += 1.0
        state = spec.by_name[session.state]
        if name == TIMEOUT:
            if state.timeout is None:
                continue
            result = step(spec, session, TimerFired(), now)
        else:
            result = step(spec, session, Input(name, Message(text, sender="u")), now)
        if name == TIMEOUT:
            machine.trigger(TIMEOUT, Context(session, None, "timeout", now))
        else:
            trigger = name if name in machine.get_triggers(machine.state) else OTHER
            machine.trigger(trigger, Context(session, Message(text, sender="u"), name, now))
        session = result.session
        ended = any(isinstance(e, End) for e in result.effects)
        expected = STOPPED if ended and not spec.by_name[session.state].final else session.state
        assert machine.state == expected, (name, text, session.history)
        if ended:
            assert machine.state == STOPPED or spec.by_name[machine.state].final
