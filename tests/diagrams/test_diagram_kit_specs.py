"""The same read-back check on the testing kit's random specs (`convo_fsm.testing.hypothesis`),
a second generator with its own mix (async actions, data guards, busy policies, `ANY`)."""

from __future__ import annotations

import pytest
from budget import examples
from diagram_helpers import expected_details, expected_edges, parse_dot, parse_mermaid
from hypothesis import given, settings

from convo_fsm import Spec
from convo_fsm.diagram import render

kit = pytest.importorskip("convo_fsm.testing.hypothesis")


@settings(max_examples=examples(40), deadline=None)
@given(kit.specs())
def test_kit_specs_draw_every_transition(spec: Spec) -> None:
    for parse, fmt in ((parse_mermaid, "mermaid"), (parse_dot, "dot")):
        drawn = parse(render(spec, fmt))
        assert drawn.edges() == expected_edges(spec)
        assert drawn.initial == spec.initial
        assert {drawn.names[n] for n in drawn.finals} == set(spec.final_states)
        ids = {name: nid for nid, name in drawn.names.items()}
        for state in spec.states:
            assert drawn.details[ids[state.name]] == expected_details(state)
