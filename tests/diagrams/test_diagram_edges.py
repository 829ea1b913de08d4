"""For random specs, the DOT and Mermaid diagrams read back hold exactly the spec's
transitions, keeps, stops and timeouts, every state with its details, the initial
and final states marked."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import pytest
from budget import examples
from diagram_helpers import (
    Drawn,
    dot_string,
    expected_details,
    expected_edges,
    label_lines,
    parse_dot,
    parse_mermaid,
    specs,
)
from hypothesis import HealthCheck, given, settings

from convo_fsm import Spec
from convo_fsm.diagram import render

_SETTINGS = settings(max_examples=examples(150), deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def _check(spec: Spec, drawn: Drawn) -> None:
    assert drawn.edges() == expected_edges(spec)
    assert sorted(drawn.names.values()) == sorted(s.name for s in spec.states)
    by_name = {name: nid for nid, name in drawn.names.items()}
    assert drawn.initial == spec.initial
    assert {drawn.names[n] for n in drawn.finals} == set(spec.final_states)
    for state in spec.states:
        assert drawn.details[by_name[state.name]] == expected_details(state)
    # The any-state node is there once exactly when there are any-state transitions.
    assert list(drawn.specials.values()).count("any") == (1 if spec.any_state else 0)
    assert not drawn.highlighted and not drawn.live_lines


@settings(_SETTINGS, max_examples=examples(50))  # pydot's parser is slow: ~0.1 s an example
@given(specs())
def test_dot_edges_are_the_spec_transitions(spec: Spec) -> None:
    _check(spec, parse_dot(render(spec, "dot")))


@_SETTINGS
@given(specs())
def test_mermaid_edges_are_the_spec_transitions(spec: Spec) -> None:
    _check(spec, parse_mermaid(render(spec, "mermaid")))


@settings(max_examples=examples(40), deadline=None)
@given(specs())
def test_same_spec_same_bytes(spec: Spec) -> None:
    for fmt in ("mermaid", "dot"):
        assert render(spec, fmt) == render(spec, fmt)


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="needs Graphviz `dot`: apt-get install graphviz")
@settings(max_examples=examples(25), deadline=None)
@given(specs())
def test_graphviz_reads_the_dot_with_every_edge(spec: Spec) -> None:
    # Graphviz's own parser: `-Tdot_json` gives back the graph it read.
    dot = render(spec, "dot")
    done = subprocess.run(["dot", "-Tdot_json"], input=dot.encode(), capture_output=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert not done.stderr, done.stderr.decode()
    read = json.loads(done.stdout)
    ids = [o["name"] for o in read["objects"]]
    mine = parse_dot(dot)
    assert sorted(ids) == sorted([*mine.names, *mine.specials])
    edges = Counter((ids[e["tail"]], ids[e["head"]], e.get("style") == "dashed",
                     tuple(label_lines(dot_string(f'"{e["label"]}"'))) if e["label"] else ())
                    for e in read.get("edges", []))
    assert edges == Counter((s, t, dashed, tuple(labels))
                            for s, t, dashed, labels in mine.raw_edges)
