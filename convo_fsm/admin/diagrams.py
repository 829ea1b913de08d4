"""The SVG diagrams of the admin pages, from `convo_fsm.diagram`, cached.

- `heat_svg(spec, counts)`: the spec's diagram with each state filled by how many live
  sessions are in it (white: none, to red: the most) and "N live" under its name;
- `live_svg(spec, state)`: the diagram with `state` lit (`diagram.render(..., live=)`).

Each state's node carries `data-state="NAME"` (and the lit one `class="node state current"`)
so the page's script and the tests find a state by name. Graphviz runs once per distinct
picture: both are cached (a heat map by its counts).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Mapping

import attrs

from convo_fsm.diagram import DiagramError, LiveState, graph, render, svg_from_dot, to_dot
from convo_fsm.spec import Spec

__all__ = ["DiagramError", "heat_colour", "heat_svg", "live_svg"]

_NODE_RE = re.compile(r'<g id="(node\d+)" class="node">\n<title>(s\d+)</title>')
_STATE_LINE_RE = re.compile(r"^(    (s\d+) \[label=<.*>)(.*)\];$", re.MULTILINE)
_XML_DECL_RE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def heat_colour(n: int, most: int) -> str:
    """White for 0, then light yellow to deep red as `n` approaches `most`."""
    if n <= 0 or most <= 0:
        return "#ffffff"
    x = min(1.0, n / most)
    # (255, 244, 204) -> (242, 120, 75): dark enough to see, light enough to read on
    r, g, b = (round(a + (z - a) * x) for a, z in ((255, 242), (244, 120), (204, 75)))
    return f"#{r:02x}{g:02x}{b:02x}"


def _ids(spec: Spec) -> dict[str, str]:
    return {f"s{i}": state.name for i, state in enumerate(spec.states)}


def _tag(svg: str, spec: Spec, current: str | None) -> str:
    """Mark each state's node with its name; drop the XML prolog (the SVG goes inline)."""
    ids = _ids(spec)

    def mark(m: re.Match[str]) -> str:
        name = ids.get(m.group(2))
        if name is None:
            return m.group(0)
        cls = "node state current" if name == current else "node state"
        return (f'<g id="{m.group(1)}" class="{cls}" data-state="{html.escape(name, True)}">'
                f"\n<title>{html.escape(name)}</title>")

    return _NODE_RE.sub(mark, _XML_DECL_RE.sub("", svg, count=1))


@functools.lru_cache(maxsize=256)
def _live(spec: Spec, state: str) -> str:
    return _tag(render(spec, "svg", live=LiveState(state)), spec, state)


def live_svg(spec: Spec, state: str) -> str:
    """The diagram of `spec` with `state` lit. DiagramError without Graphviz."""
    return _live(spec, state)


@functools.lru_cache(maxsize=64)
def _heat(spec: Spec, counts: tuple[int, ...]) -> str:
    g = graph(spec)
    by_id = {f"s{i}": n for i, n in enumerate(counts)}
    nodes = tuple(attrs.evolve(node, details=(*node.details, f"{by_id[node.id]} live"))
                  if node.kind == "state" else node for node in g.nodes)
    dot = to_dot(attrs.evolve(g, nodes=nodes))
    most = max(counts, default=0)

    def fill(m: re.Match[str]) -> str:
        colour = heat_colour(by_id.get(m.group(2), 0), most)
        return f'{m.group(1)}{m.group(3)}, style="rounded,filled", fillcolor="{colour}"];'

    return _tag(svg_from_dot(_STATE_LINE_RE.sub(fill, dot)), spec, None)


def heat_svg(spec: Spec, counts: Mapping[str, int]) -> str:
    """The diagram of `spec` as a heat map of `counts` (state -> live sessions)."""
    return _heat(spec, tuple(counts.get(s.name, 0) for s in spec.states))
