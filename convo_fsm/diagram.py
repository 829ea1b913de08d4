"""State diagrams drawn from a `Spec`, the same table the engine runs.

`graph(spec)` reads the table once into a small drawing model (nodes and
edges, in the table's own order); `render(spec, fmt)` writes it as Mermaid
(a `flowchart`, which renders on code hosts) or Graphviz DOT, both from this
module's own code, or as SVG by running Graphviz `dot` on the DOT text.

What is drawn:

- every state, with its enter/exit actions and its warning (`warn at 45s`);
  the initial state gets an edge from a start dot, final states a double
  border (DOT) or a thick one (Mermaid);
- every transition as an edge labelled `event [guard]`: `KEEP` is a
  self-loop, `STOP` an edge to the end node; a transition to its own state
  (which runs exit and enter again) is a self-loop marked `(re-enter)`; the
  self-loops of a state are drawn as one loop, one label line per transition,
  in priority order;
- each timeout as a dashed edge labelled with its duration (`60s`);
- the any-state transitions (help, exit, ...) once, from a single
  "any state" node, naming the states that handle the event themselves.

Callables are named by `__name__`; an unnamed one (a lambda) shows as `lambda`.
The output is deterministic: the table's order, no ids or addresses, so the
same spec gives the same bytes (`convo-fsm diagram --all --check` relies on it).

`render(spec, fmt, live=LiveState(...))` highlights one state and shows the
time left in it; `render_live(engine, key, fmt)` does that for a running
session.
"""

from __future__ import annotations

import functools
import hashlib
import html
import math
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

import attrs

from convo_fsm.spec import BACK, KEEP, STOP, On, Spec, State, Target

if TYPE_CHECKING:
    from convo_fsm.engine import Engine

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "DiagramError",
    "DotNotFound",
    "Edge",
    "Graph",
    "LiveState",
    "Node",
    "callable_name",
    "dot_digest",
    "graph",
    "live_state",
    "one_line",
    "render",
    "render_live",
    "seconds",
    "svg_digest",
    "svg_from_dot",
    "to_dot",
    "to_mermaid",
]

Format = Literal["mermaid", "dot", "svg"]
FORMATS: Final[tuple[Format, ...]] = ("mermaid", "dot", "svg")
EXTENSIONS: Final[dict[str, str]] = {"mermaid": ".mmd", "dot": ".dot", "svg": ".svg"}

# Ids of the drawing's own nodes. States get "s0", "s1", ... in table order, so
# no state name (any string) can collide with these or break the syntax.
START: Final = "start"
END: Final = "stop"
ANY_NODE: Final = "anystate"

# Bumped whenever the SVG post-processing changes, so the digest an SVG carries
# changes with it (see `svg_from_dot`).
_SVG_REVISION: Final = "1"


class DiagramError(RuntimeError):
    """A diagram cannot be produced (bad format, missing tool, tool failure)."""


class DotNotFound(DiagramError):
    """Graphviz `dot` is not on PATH, so SVG cannot be made."""

    def __init__(self) -> None:
        super().__init__(
            "SVG needs Graphviz's `dot` program, which is not on PATH: install Graphviz "
            "(Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install graphviz`), "
            "or use --format mermaid or --format dot, which need nothing installed")


# -- the drawing model ---------------------------------------------------------------------------
EdgeKind = Literal["event", "keep", "stop", "timeout", "start"]


@attrs.frozen
class Node:
    """A node: a state (`kind` "state"), the start dot, the end node or the any-state node.

    `details` are the extra lines drawn under a state's name (enter, exit, warning)."""

    id: str
    kind: Literal["state", "start", "end", "any"]
    name: str
    details: tuple[str, ...] = ()
    initial: bool = False
    final: bool = False


@attrs.frozen
class Edge:
    """An edge from node id `source` to node id `target`.

    `kind`: "event" (to another state, or to a state from the any-state node),
    "keep" (self-loop), "stop" (to the end node), "timeout" (dashed, to any of
    these), "start" (start dot to the initial state)."""

    source: str
    target: str
    kind: EdgeKind
    label: str


@attrs.frozen
class Graph:
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


@attrs.frozen
class LiveState:
    """What a running session shows on its spec's diagram: its state and its time left."""

    state: str
    seconds_left: float | None = None


def seconds(value: float) -> str:
    """`60` -> `60s`, `1.5` -> `1.5s`; floats rounded to milliseconds (`0.3-0.1` -> `0.2s`)."""
    value = round(float(value), 3)
    if value == int(value):
        return f"{int(value)}s"
    return f"{value:.3f}".rstrip("0") + "s"


def callable_name(fn: object) -> str:
    """How a guard or action is named on a diagram: its `__name__` (a partial: its
    function's), `lambda` for anonymous ones, its type's name for other callables."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str):
        name = type(fn).__name__
    # A lambda has no name worth showing ("<lambda>" would also need escaping in every
    # format); "lambda" still tells the reader that a condition or an action is there.
    return "lambda" if name == "<lambda>" else name


# Control characters, line/paragraph separators, lone surrogates (not encodable).
_NOT_IN_A_LINE: Final = frozenset({"Cc", "Zl", "Zp", "Cs"})


def one_line(text: str) -> str:
    """`text` with control characters and line breaks made spaces: every label is one
    line of text that every format can carry, whatever a name holds."""
    return "".join(" " if unicodedata.category(c) in _NOT_IN_A_LINE else c for c in text)


def _on_label(t: On) -> str:
    if t.guard is None:
        return one_line(t.event)
    return one_line(f"{t.event} [{callable_name(t.guard)}]")


_REENTER: Final = " (re-enter)"
_BACK: Final = " (back)"


def start_label(spec: Spec) -> str:
    """The start edge's label: what a declared `Spec.start` takes and how it keys sessions
    (`start [LOW-HIGH] (member)`; a kind chosen by a function: `(member or group:
    its_name)`); '' for a spec that declares no start."""
    start = spec.start
    if start is None:
        return ""
    kind = (start.kind if isinstance(start.kind, str)
            else f"member or group: {callable_name(start.kind)}")
    return one_line(" ".join(filter(None, ("start", start.usage, f"({kind})"))))


def graph(spec: Spec) -> Graph:
    """The drawing model of `spec`: nodes and edges in the table's order."""
    if not isinstance(spec, Spec):
        raise TypeError(f"a diagram needs a convo_fsm.Spec, got {type(spec).__name__}")
    ids = {state.name: f"s{i}" for i, state in enumerate(spec.states)}
    nodes: list[Node] = [Node(START, "start", "start")]
    edges: list[Edge] = [Edge(START, ids[spec.initial], "start", start_label(spec))]
    uses_end = False

    def to(source: str, target: Target) -> tuple[str, EdgeKind]:
        nonlocal uses_end
        if target is KEEP or target is BACK:  # BACK: a loop labelled "(back)"
            return source, "keep"
        if target is STOP:
            uses_end = True
            return END, "stop"
        assert isinstance(target, str)
        return ids[target], "event"

    for state in spec.states:
        sid = ids[state.name]
        nodes.append(Node(sid, "state", one_line(state.name), _details(state),
                          initial=state.name == spec.initial, final=state.final))
        # A transition naming its own state leaves and re-enters it (exit and enter run,
        # unlike KEEP): drawn as a self-loop too, so its label says so.
        for t in state.on:
            target, kind = to(sid, t.target)
            label = _on_label(t) + (_REENTER if t.target == state.name else "")
            edges.append(Edge(sid, target, kind, label + (_BACK if t.target is BACK else "")))
        if state.call is not None:  # the sub-conversation's endings, as the parent goes on
            for ending, end_target in state.call.on_end.items():
                target, kind = to(sid, end_target)
                edges.append(Edge(sid, target, kind,
                                  one_line(f"{state.call.spec.name} ends: {ending}")))
        if state.timeout is not None:  # one dashed edge per branch, in the order tried
            for branch in state.timeout.branches:
                target, _ = to(sid, branch.target)
                label = seconds(state.timeout.after)
                if branch.guard is not None:
                    label += one_line(f" [{callable_name(branch.guard)}]")
                edges.append(Edge(sid, target, "timeout",
                                  label + (_REENTER if branch.target == state.name else "")))

    if spec.any_state:
        nodes.append(Node(ANY_NODE, "any", "any state"))
        for t in spec.any_state:
            target, kind = to(ANY_NODE, t.target)
            label = _on_label(t) + (_BACK if t.target is BACK else "")
            handled = spec.shadowed(t)
            if handled:  # these states name the event themselves, so theirs wins
                label += one_line(f" (not in {', '.join(handled)})")
            edges.append(Edge(ANY_NODE, target, kind, label))
    if uses_end:
        nodes.append(Node(END, "end", "end"))
    return Graph(one_line(spec.name), tuple(nodes), tuple(edges))


def _details(state: State) -> tuple[str, ...]:
    lines = []
    if state.call is not None:
        lines.append(one_line(f"calls: {state.call.spec.name} ({state.call.timeout} timeout)"))
    if state.enter is not None:
        lines.append(one_line(f"enter: {callable_name(state.enter)}"))
    if state.exit is not None:
        lines.append(one_line(f"exit: {callable_name(state.exit)}"))
    timeout = state.timeout
    if timeout is not None and timeout.warn_before is not None:
        lines.append(f"warn at {seconds(timeout.after - timeout.warn_before)}")
    return tuple(lines)


def _live_line(live: LiveState) -> str:
    if live.seconds_left is None:
        return "now here"
    # Whole seconds, rounded up: "0s left" only when the deadline has come.
    return f"now here: {math.ceil(round(live.seconds_left, 3))}s left"


def _check_live(spec: Spec, live: LiveState | None) -> None:
    if live is not None and live.state not in spec.by_name:
        raise ValueError(f"spec {spec.name!r} has no state {live.state!r} to highlight")


def _drawn(g: Graph) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    """The edges as drawn: (source, target, dashed, labels). The self-loops of a node
    (its keeps; dashed ones apart) become one loop with one label line per transition,
    in priority order: Graphviz draws several labelled loops on a node over each other."""
    drawn: list[tuple[str, str, bool, tuple[str, ...]]] = []
    loops: dict[tuple[str, bool], int] = {}
    for e in g.edges:
        dashed = e.kind == "timeout"
        labels = () if e.kind == "start" and not e.label else (e.label,)
        if e.source == e.target:
            at = loops.get((e.source, dashed))
            if at is not None:
                s, t, d, previous = drawn[at]
                drawn[at] = (s, t, d, previous + labels)
                continue
            loops[(e.source, dashed)] = len(drawn)
        drawn.append((e.source, e.target, dashed, labels))
    return drawn


# -- Mermaid -------------------------------------------------------------------------------------
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;",
                    "|": "#124;", "`": "#96;"}
_MERMAID_RE = re.compile("[" + re.escape("".join(_MERMAID_ESCAPES)) + "]")


def _mm(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what Mermaid would parse."""
    return _MERMAID_RE.sub(lambda m: _MERMAID_ESCAPES[m.group()], text)


def _comment(text: str) -> str:
    return " ".join(text.split())


def to_mermaid(g: Graph, live: LiveState | None = None) -> str:
    out = [f"%% State diagram of spec {_comment(repr(g.name))}, generated by convo-fsm: "
           "do not edit by hand.",
           "flowchart TB"]
    finals: list[str] = []
    current = None
    for n in g.nodes:
        if n.kind == "start":
            out.append(f'    {n.id}(("start"))')
        elif n.kind == "end":
            out.append(f'    {n.id}((("end")))')
        elif n.kind == "any":
            out.append(f'    {n.id}["{_mm(n.name)}"]')
        else:
            lines = [f"<b>{_mm(n.name)}</b>", *(_mm(d) for d in n.details)]
            if live is not None and live.state == n.name:
                lines.append(f"<i>{_mm(_live_line(live))}</i>")
                current = n.id
            text = "<br/>".join(lines)
            out.append(f'    {n.id}(["{text}"])' if n.final else f'    {n.id}("{text}")')
            if n.final:
                finals.append(n.id)
    loops: list[str] = []
    for source, target, dashed, labels in _drawn(g):
        text = "<br/>".join(_mm(label) for label in labels)
        if not labels:
            out.append(f"    {source} --> {target}")
        elif source == target:
            # Mermaid's layout leaves no room for a self-loop's label (it lands on whatever
            # is drawn below), so a loop goes through its label, drawn like an edge label:
            # a line out of the state, an arrow back into it.
            loop = f"l{len(loops)}"
            loops.append(loop)
            out.append(f'    {loop}["{text}"]')
            out.append(f"    {source} {'-.-' if dashed else '---'} {loop}")
            out.append(f"    {loop} {'-.->' if dashed else '-->'} {source}")
        elif dashed:
            out.append(f'    {source} -.->|"{text}"| {target}')
        else:
            out.append(f'    {source} -->|"{text}"| {target}')
    out.append("    classDef marker fill:#333,stroke:#333,color:#fff")
    out.append("    classDef any fill:#f4f4f4,stroke:#888,stroke-dasharray:4 3")
    out.append("    classDef final stroke-width:3px")
    out.append("    classDef current fill:#fff3b0,stroke:#e69500,stroke-width:3px")
    out.append("    classDef loop fill:#e8e8e8,stroke:none")
    markers = [n.id for n in g.nodes if n.kind in ("start", "end")]
    out.append(f"    class {','.join(markers)} marker")
    if any(n.kind == "any" for n in g.nodes):
        out.append(f"    class {ANY_NODE} any")
    if finals:
        out.append(f"    class {','.join(finals)} final")
    if loops:
        out.append(f"    class {','.join(loops)} loop")
    if current is not None:
        out.append(f"    class {current} current")
    return "\n".join(out) + "\n"


# -- DOT -----------------------------------------------------------------------------------------
def _dq_escape(text: str) -> str:
    # Backslashes doubled so that Graphviz's label escapes (\n, \N, \G, ...) never fire
    # on a name; quotes escaped.
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dq(text: str) -> str:
    """A DOT double-quoted string holding `text` as it is."""
    return f'"{_dq_escape(text)}"'


def _dq_lines(lines: tuple[str, ...]) -> str:
    """A DOT label of several left-justified lines (Graphviz's backslash-l ends each)."""
    return '"' + "".join(_dq_escape(line) + "\\l" for line in lines) + '"'


def _html(text: str) -> str:
    # Brackets too: Graphviz 2.43 rejects an HTML label whose text is a lone "]".
    return html.escape(text, quote=True).replace("[", "&#91;").replace("]", "&#93;")


_FONT: Final = "Helvetica"


def to_dot(g: Graph, live: LiveState | None = None) -> str:
    out = [f"// State diagram of spec {_comment(repr(g.name))}, generated by convo-fsm: "
           "do not edit by hand.",
           f"digraph {_dq(g.name)} {{",
           f'    graph [rankdir=TB, fontname="{_FONT}", nodesep=0.5, ranksep=0.55];',
           f'    node [shape=box, style=rounded, fontname="{_FONT}", fontsize=12, '
           'margin="0.15,0.06"];',
           f'    edge [fontname="{_FONT}", fontsize=10, arrowsize=0.7];']
    for n in g.nodes:
        if n.kind == "start":
            out.append(f'    {n.id} [shape=circle, style=filled, fillcolor=black, label="", '
                       "width=0.18, fixedsize=true];")
        elif n.kind == "end":
            out.append(f'    {n.id} [shape=doublecircle, style=filled, fillcolor=black, '
                       'label="", width=0.14, fixedsize=true];')
        elif n.kind == "any":
            out.append(f'    {n.id} [label={_dq(n.name)}, style="rounded,dashed,filled", '
                       'fillcolor="#f4f4f4", color="#888888"];')
        else:
            rows = [f"<b>{_html(n.name)}</b>"]
            rows += [f'<font point-size="10">{_html(d)}</font>' for d in n.details]
            attrs_ = []
            if live is not None and live.state == n.name:
                rows.append(f'<font point-size="10" color="#b36b00"><i>'
                            f"{_html(_live_line(live))}</i></font>")
                attrs_.append('style="rounded,filled,bold", fillcolor="#fff3b0", '
                              'color="#e69500", penwidth=2')
            if n.final:
                attrs_.append("peripheries=2")
            label = "<" + "<br/>".join(rows) + ">"
            out.append(f"    {n.id} [label={label}{''.join(', ' + a for a in attrs_)}];")
    for source, target, dashed, labels in _drawn(g):
        if not labels:
            out.append(f"    {source} -> {target};")
            continue
        # One line per transition; several lines are left-justified (\l ends each one).
        text = _dq(labels[0]) if len(labels) == 1 else _dq_lines(labels)
        if dashed:
            # A timeout leaves from its state's lower right corner: clear of the self-loop
            # labels on the right, and of most edges leaving from the bottom.
            port = "" if source == target else ", tailport=se"
            out.append(f'    {source} -> {target} [label={text}, style=dashed{port}, '
                       'color="#666666", fontcolor="#444444"];')
        else:
            out.append(f"    {source} -> {target} [label={text}];")
    out.append("}")
    return "\n".join(out) + "\n"


# -- SVG -----------------------------------------------------------------------------------------
_GENERATOR_RE = re.compile(r"<!-- Generated by graphviz version [^>]*-->\n")
_DIGEST_RE = re.compile(r"<!-- convo-fsm source sha256: ([0-9a-f]{64}) -->")


def dot_digest(dot: str) -> str:
    """The digest an SVG made from `dot` carries: it changes when the DOT text (or this
    module's SVG post-processing) changes, and not with the Graphviz version or fonts."""
    return hashlib.sha256(f"{_SVG_REVISION}\n{dot}".encode()).hexdigest()


def svg_digest(svg: str) -> str | None:
    """The source digest embedded in an SVG made by `svg_from_dot`, or None."""
    found = _DIGEST_RE.search(svg)
    return None if found is None else found.group(1)


def svg_from_dot(dot: str, *, timeout: float = 60.0) -> str:
    """Run Graphviz `dot -Tsvg` on `dot`. Raises `DotNotFound` if `dot` is not installed.

    The Graphviz version comment is dropped (it differs between machines, not between
    specs) and a digest of the DOT source is put in its place."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotNotFound()
    try:
        done = subprocess.run([exe, "-Tsvg"], input=dot.encode(), capture_output=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiagramError(f"running {exe} -Tsvg failed: {exc}") from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise DiagramError(f"{exe} -Tsvg exited with {done.returncode}: {err}")
    svg = done.stdout.decode()
    stamp = f"<!-- convo-fsm source sha256: {dot_digest(dot)} -->\n"
    svg, n = _GENERATOR_RE.subn(stamp, svg, count=1)
    if n == 0:
        svg = svg.replace("<svg", stamp + "<svg", 1)
    return svg


# -- the entry points ----------------------------------------------------------------------------
_RENDERERS: Final[dict[str, Callable[[Graph, LiveState | None], str]]] = {
    "mermaid": to_mermaid, "dot": to_dot}


def render(spec: Spec, fmt: str = "mermaid", *, live: LiveState | None = None) -> str:
    """The diagram of `spec` as Mermaid, DOT or SVG text (SVG needs Graphviz `dot`).

    With `live`, its state is highlighted and its time left shown."""
    if fmt not in FORMATS:
        raise DiagramError(f"unknown diagram format {fmt!r}; choose one of {', '.join(FORMATS)}")
    _check_live(spec, live)
    g = graph(spec)
    if fmt == "svg":
        return svg_from_dot(to_dot(g, live))
    return _RENDERERS[fmt](g, live)


def live_state(engine: Engine, key: str) -> tuple[Spec, LiveState]:
    """The spec and live state of the session on `key` (KeyError if there is none)."""
    session = engine.session(key)
    if session is None:
        raise KeyError(f"no live session on {key!r}")
    return engine.spec(session.spec), LiveState(session.state,
                                                session.seconds_left(engine.clock.now()))


def render_live(engine: Engine, key: str, fmt: str = "mermaid") -> str:
    """The diagram of the session on `key`: its spec, with its current state highlighted
    and the time left shown. KeyError if `key` has no live session."""
    spec, live = live_state(engine, key)
    return render(spec, fmt, live=live)
