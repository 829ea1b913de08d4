"""Shared by the diagram tests: a random-spec strategy, the spec's own account of what
its diagram must draw (computed from the table, not from convo_fsm.diagram), and
parsers that read DOT (with pydot) and our Mermaid back into edges."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pydot
from hypothesis import strategies as st

from convo_fsm import ANY, BACK, KEEP, STOP, On, Spec, State, Timeout
from convo_fsm.diagram import seconds

END = "<end>"  # what an edge to the end node is called in the edge tuples below
ANY_STATE = "<any state>"

# An edge as the tests see it: (source state, target state or END, dashed, label).
EdgeTuple = tuple[str, str, bool, str]


# -- the oracle: what the table says must be drawn ------------------------------------------
def name_of(fn: Callable[..., Any]) -> str:
    return "lambda" if fn.__name__ == "<lambda>" else fn.__name__


def expected_edges(spec: Spec) -> Counter[EdgeTuple]:
    """Every transition, keep, stop and timeout of `spec`, one tuple each."""
    edges: Counter[EdgeTuple] = Counter()

    def target(source: str, t: object) -> str:
        if t is KEEP or t is BACK:  # BACK is drawn as a loop labelled "(back)"
            return source
        if t is STOP:
            return END
        assert isinstance(t, str)
        return t

    def label(t: On, source: str) -> str:
        text = t.event if t.guard is None else f"{t.event} [{name_of(t.guard)}]"
        if t.target == source:  # named itself: exit and enter run again, unlike KEEP
            text += " (re-enter)"
        if t.target is BACK:
            text += " (back)"
        return text

    for state in spec.states:
        for t in state.on:
            edges[(state.name, target(state.name, t.target), False, label(t, state.name))] += 1
        if state.call is not None:
            for ending, to in state.call.on_end.items():
                edges[(state.name, target(state.name, to), False,
                       f"{state.call.spec.name} ends: {ending}")] += 1
        if state.timeout is not None:
            branches = [(w.target, w.guard) for w in state.timeout.when]
            for to, guard in [*branches, (state.timeout.target, None)]:
                reenter = " (re-enter)" if to == state.name else ""
                when = "" if guard is None else f" [{name_of(guard)}]"
                edges[(state.name, target(state.name, to), True,
                       seconds(state.timeout.after) + when + reenter)] += 1
    for t in spec.any_state:
        text = label(t, ANY_STATE)
        handled = [s.name for s in spec.states
                   if t.event != ANY and any(o.event == t.event for o in s.on)]
        if handled:
            text += f" (not in {', '.join(handled)})"
        edges[(ANY_STATE, target(ANY_STATE, t.target), False, text)] += 1
    return edges


def expected_details(state: State) -> list[str]:
    lines = []
    if state.call is not None:
        lines.append(f"calls: {state.call.spec.name} ({state.call.timeout} timeout)")
    if state.enter is not None:
        lines.append(f"enter: {name_of(state.enter)}")
    if state.exit is not None:
        lines.append(f"exit: {name_of(state.exit)}")
    if state.timeout is not None and state.timeout.warn_before is not None:
        lines.append(f"warn at {seconds(state.timeout.after - state.timeout.warn_before)}")
    return lines


# -- reading the output back -----------------------------------------------------------------
class Drawn:
    """A diagram read back: state names by node id, details, finals, initial, edges."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # node id -> state name
        self.details: dict[str, list[str]] = {}
        self.finals: set[str] = set()
        self.highlighted: set[str] = set()
        self.live_lines: dict[str, str] = {}
        self.specials: dict[str, str] = {}  # node id -> "start" | "end" | "any"
        self.raw_edges: list[tuple[str, str, bool, list[str]]] = []

    def node(self, node_id: str) -> str:
        kind = self.specials.get(node_id)
        if kind == "end":
            return END
        if kind == "any":
            return ANY_STATE
        return self.names[node_id]

    @property
    def initial(self) -> str:
        starts = [(s, t) for s, t, _, labels in self.raw_edges if self.specials.get(s) == "start"]
        assert len(starts) == 1, starts
        return self.names[starts[0][1]]

    def edges(self) -> Counter[EdgeTuple]:
        """One tuple per transition: a merged self-loop carries one label line per transition."""
        out: Counter[EdgeTuple] = Counter()
        for s, t, dashed, labels in self.raw_edges:
            if self.specials.get(s) == "start":
                continue
            assert labels, f"unlabelled edge {s} -> {t}"
            if s != t:
                assert len(labels) == 1, labels
            for label in labels:
                out[(self.node(s), self.node(t), dashed, label)] += 1
        return out


def dot_string(value: str) -> str:
    """A DOT quoted string's text, with Graphviz's label escapes (\\l, \\n: line ends)."""
    assert value.startswith('"') and value.endswith('"'), value
    out, chars = [], iter(value[1:-1])
    for c in chars:
        if c == "\\":
            nxt = next(chars)
            out.append("\n" if nxt in "lnr" else nxt)
        else:
            out.append(c)
    return "".join(out)


def label_lines(text: str) -> list[str]:
    return text[:-1].split("\n") if text.endswith("\n") else [text]


def parse_dot(text: str) -> Drawn:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1
    g = graphs[0]
    drawn = Drawn()
    for node in g.get_nodes():
        nid = node.get_name()
        if nid in ("node", "edge", "graph"):
            continue
        attrs = node.get_attributes()
        label = attrs.get("label", "")
        if nid in ("start", "stop"):
            assert label == '""'
            drawn.specials[nid] = "start" if nid == "start" else "end"
            if nid == "stop":
                assert attrs["shape"] == "doublecircle"
        elif label.startswith("<"):
            body = label[1:-1]
            bold = re.fullmatch(r"<b>(.*?)</b>((?:<br/>.*)?)", body, re.S)
            assert bold is not None, body
            drawn.names[nid] = html.unescape(bold.group(1))
            details = re.findall(r'<font point-size="10">(.*?)</font>', bold.group(2))
            drawn.details[nid] = [html.unescape(d) for d in details]
            live = re.findall(r'<font point-size="10" color="#b36b00"><i>(.*?)</i></font>', body)
            if live:
                drawn.live_lines[nid] = html.unescape(live[0])
            if attrs.get("peripheries") == "2":
                drawn.finals.add(nid)
            if "filled" in attrs.get("style", ""):
                drawn.highlighted.add(nid)
        else:
            assert dot_string(label) == "any state", label
            drawn.specials[nid] = "any"
    for edge in g.get_edges():
        attrs = edge.get_attributes()
        labels = label_lines(dot_string(attrs["label"])) if "label" in attrs else []
        drawn.raw_edges.append((edge.get_source(), edge.get_destination(),
                                attrs.get("style") == "dashed", labels))
    return drawn


_MM_NODE = re.compile(r'^    (\w+)(\(\(\(|\(\(|\(\[|\(|\[)"(.*)"(\)\)\)|\)\)|\]\)|\)|\])$')
_MM_EDGE = re.compile(r'^    (\w+) (-->|-\.->|---|-\.-)(?:\|"(.*)"\|)? (\w+)$')
_MM_CLASS = re.compile(r"^    class ([\w,]+) (\w+)$")


def _mm_text(text: str) -> str:
    assert '"' not in text and "<" not in text and "|" not in text, text
    return re.sub(r"#(\w+);",
                  lambda m: chr(int(m[1])) if m[1].isdigit() else html.unescape(f"&{m[1]};"),
                  text)


def parse_mermaid(text: str) -> Drawn:
    lines = text.splitlines()
    assert lines[0].startswith("%% ") and lines[1] == "flowchart TB", lines[:2]
    drawn = Drawn()
    shapes: dict[str, str] = {}
    loop_labels: dict[str, list[str]] = {}  # declared before their links
    links: list[tuple[str, str, str]] = []
    for line in lines[2:]:
        if line.startswith("    classDef "):
            continue
        if m := _MM_CLASS.match(line):
            for nid in m[1].split(","):
                if m[2] == "final":
                    drawn.finals.add(nid)
                elif m[2] == "current":
                    drawn.highlighted.add(nid)
                elif m[2] == "loop":
                    assert nid in loop_labels
            continue
        if m := _MM_EDGE.match(line):
            labels = [] if m[3] is None else [_mm_text(p) for p in m[3].split("<br/>")]
            links.append((m[1], m[4], m[2]))
            if m[1] not in loop_labels and m[4] not in loop_labels:
                drawn.raw_edges.append((m[1], m[4], m[2] == "-.->", labels))
            continue
        m = _MM_NODE.match(line)
        assert m is not None, f"unreadable Mermaid line {line!r}"
        nid, shape, body = m[1], m[2], m[3]
        if re.fullmatch(r"l\d+", nid):  # a self-loop drawn through its label
            assert shape == "["
            loop_labels[nid] = [_mm_text(p) for p in body.split("<br/>")]
            continue
        shapes[nid] = shape
        if nid in ("start", "stop"):
            drawn.specials[nid] = "start" if nid == "start" else "end"
        elif nid == "anystate":
            assert _mm_text(body) == "any state"
            drawn.specials[nid] = "any"
        else:
            parts = body.split("<br/>")
            bold = re.fullmatch(r"<b>(.*)</b>", parts[0])
            assert bold is not None, parts
            drawn.names[nid] = _mm_text(bold[1])
            drawn.details[nid] = [_mm_text(p) for p in parts[1:] if not p.startswith("<i>")]
            live = [p for p in parts[1:] if p.startswith("<i>")]
            if live:
                drawn.live_lines[nid] = _mm_text(live[0][3:-4])
    # Each loop: a line from its state to the label, an arrow from the label back.
    for loop, labels in loop_labels.items():
        out = [(s, kind) for s, t, kind in links if t == loop]
        back = [(t, kind) for s, t, kind in links if s == loop]
        assert len(out) == 1 and len(back) == 1, (loop, links)
        assert out[0][0] == back[0][0]
        assert (out[0][1], back[0][1]) in (("---", "-->"), ("-.-", "-.->")), (out, back)
        drawn.raw_edges.append((out[0][0], out[0][0], back[0][1] == "-.->", labels))
    # A final state is drawn as a stadium; only finals are.
    assert {n for n, s in shapes.items() if s == "(["} == drawn.finals
    return drawn


# -- random specs ------------------------------------------------------------------------------
# Names may hold anything a label must survive (quotes, <, &, #, |, backslashes, unicode),
# except what `one_line` replaces (control characters, line breaks: tested on their own).
_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                min_size=1, max_size=12)
_EVENTS = st.one_of(st.sampled_from(["message", "help", "exit", ANY, "next"]), _TEXT)


def _named(name: str) -> Callable[[Any], bool]:
    def fn(ctx: Any) -> bool:
        return True

    fn.__name__ = name
    return fn


_CALLABLES = st.one_of(st.none(), st.builds(_named, _TEXT), st.just(lambda ctx: True))


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    """A valid Spec: up to 6 states, each reachable, each non-final one with a way out."""
    names = draw(st.lists(_TEXT.filter(lambda s: s != ANY), min_size=1, max_size=6, unique=True))
    finals = [False] + [draw(st.booleans()) for _ in names[1:]]
    targets = st.one_of(st.sampled_from(names), st.just(KEEP), st.just(STOP))
    on: list[list[On]] = [[] for _ in names]
    timeouts: list[Timeout | None] = [None for _ in names]

    def an_on(target: object) -> On:
        return On(draw(_EVENTS), target, guard=draw(_CALLABLES))  # type: ignore[arg-type]

    # Reachability: each state is entered from an earlier non-final one.
    for i in range(1, len(names)):
        parent = draw(st.sampled_from([j for j in range(i) if not finals[j]]))
        if timeouts[parent] is None and draw(st.booleans()):
            timeouts[parent] = Timeout(draw(st.integers(1, 3600)), names[i])
        else:
            on[parent].append(an_on(names[i]))
    for i in range(len(names)):
        if finals[i]:
            continue
        on[i] += [an_on(draw(targets)) for _ in range(draw(st.integers(0, 4)))]
        if timeouts[i] is None and draw(st.booleans()):
            after = draw(st.sampled_from([0.5, 1, 30, 60, 90.25, 3600]))
            warn = draw(st.sampled_from([None, after / 4, after / 2]))
            timeouts[i] = Timeout(after, draw(targets), warn_before=warn,
                                  warn=None if warn is None else _named("warn"))
        if not any(t.target is STOP or (t.target != names[i] and t.target is not KEEP)
                   for t in on[i]) and timeouts[i] is None:
            on[i].append(an_on(STOP))
    states = [State(name, on=on[i], timeout=timeouts[i], final=finals[i],
                    enter=draw(_CALLABLES), exit=draw(_CALLABLES))
              for i, name in enumerate(names)]
    any_state = [an_on(draw(targets)) for _ in range(draw(st.integers(0, 3)))]
    return Spec(name=draw(_TEXT), initial=names[0], states=states, any_state=any_state)
