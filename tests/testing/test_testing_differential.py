"""Differential test: for random specs without actions, our pure step and a
`transitions.Machine` built from the same table agree on the state after every event.

The Machine is built here from the spec's declared rules (its `On`s, its any-state
transitions, its timeouts), not from our compiled lookup tables, with the precedence the
docs give: a state's own transitions for an event, else the any-state ones for it; then the
state's wildcard, then the any-state wildcard; the first whose guard passes wins.
"""

from __future__ import annotations

from typing import Any

from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine

from convo_fsm import ANY, KEEP, STOP, Message, Spec
from convo_fsm.context import Context
from convo_fsm.step import End, Input, TimerFired, new_session, step
from convo_fsm.testing.hypothesis import specs

STOPPED = "__stopped__"
TIMEOUT = "__timeout__"
OTHER = "__other__"  # an event name no transition names: only wildcards apply


def machine_for(spec: Spec) -> Machine:
    states = [s.name for s in spec.states] + [STOPPED]
    m = Machine(states=states, initial=spec.initial, auto_transitions=False,
                ignore_invalid_triggers=True)
    any_on: dict[str, list[Any]] = {}
    for t in spec.any_state:
        any_on.setdefault(t.event, []).append(t)
    names = [*sorted({t.event for s in spec.states for t in s.on} | set(any_on)), OTHER]
    names = [n for n in names if n != ANY]

    def add(trigger: str, source: str, t: Any) -> None:
        guard = t.guard
        conditions = [] if guard is None else [lambda ctx, g=guard: bool(g(ctx))]
        dest = (None if t.target is KEEP else STOPPED if t.target is STOP else t.target)
        m.add_transition(trigger, source, dest, conditions=conditions)

    for state in spec.states:
        if state.final:
            continue
        own: dict[str, list[Any]] = {}
        for t in state.on:
            own.setdefault(t.event, []).append(t)
        for name in names:
            for t in own.get(name) or any_on.get(name, []):
                add(name, state.name, t)
            for t in own.get(ANY, []) + any_on.get(ANY, []):
                add(name, state.name, t)
        if state.timeout is not None:
            target = state.timeout.target
            m.add_transition(TIMEOUT, state.name,
                             None if target is KEEP else STOPPED if target is STOP else target)
    return m


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
            machine.trigger(TIMEOUT)
        else:
            trigger = name if name in machine.get_triggers(machine.state) else OTHER
            machine.trigger(trigger, Context(session, Message(text, sender="u"), name, now))
        session = result.session
        ended = any(isinstance(e, End) for e in result.effects)
        expected = STOPPED if ended and not spec.by_name[session.state].final else session.state
        assert machine.state == expected, (name, text, session.history)
        if ended:
            assert machine.state == STOPPED or spec.by_name[machine.state].final
