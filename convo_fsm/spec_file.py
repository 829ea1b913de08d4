"""Specs as data files: a conversation written in YAML, TOML or JSON.

    spec = load_spec("quiz.yaml", registry={"is_42": is_42, "count": count})

A file holds the same table a `Spec` does: states with their transitions, timeouts
(guarded ones too), warnings, enter/exit, final states, any-state transitions, a start
declaration, a word classifier, or a whole form (`form:` with slots). Guards and actions
are *names*, resolved only from the `registry` the program passes: an unknown name is a
`SpecFileError` naming it, and nothing is ever imported by name from the file. Replies are
templates filled from the session's data by a formatter that reaches nothing else: `{score}`
works; `{data.__class__}`, `{x[0]}`, `{0}` or `{x!r}` are refused when the file is loaded.

The file is checked first against the published JSON Schema (`SCHEMA_PATH`, which editors
can use to complete and check files), so an error names the file, the line and the field:
`quiz.yaml:12: states.asking.on[0].target: 7 is not of type 'string'`. Duplicate keys are
an error in every format. `Spec.to_data(registry)` (`spec_to_data`) writes a spec back as
such data, its callables named from the same registry; `dump_spec` writes a file.

Needs the `files` extra (PyYAML, jsonschema): `pip install 'convo-fsm[files]'`.
"""

from __future__ import annotations

import inspect
import json
import re
import string
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from convo_fsm.context import Context
from convo_fsm.spec import (
    ANY,
    BACK,
    KEEP,
    STOP,
    Busy,
    Call,
    On,
    Spec,
    SpecError,
    Start,
    State,
    Target,
    Timeout,
    When,
    classify_text,
)

__all__ = [
    "SCHEMA_PATH",
    "Both",
    "Registry",
    "SpecFileError",
    "Template",
    "TemplateError",
    "WordClassifier",
    "dump_spec",
    "load_spec",
    "read_data",
    "schema",
    "spec_from_data",
    "spec_to_data",
]

Registry = Mapping[str, Any]
"""Names to the callables (guards, actions, parsers, classifiers) and called Specs a file uses."""
SCHEMA_PATH: Final = Path(__file__).parent / "schemas" / "spec_file.schema.json"
SUFFIXES: Final = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}
_MARKERS: Final = {"KEEP": KEEP, "STOP": STOP, "BACK": BACK}
Path_ = tuple[str | int, ...]


class SpecFileError(SpecError):
    """A spec file that cannot be loaded: `path`, `line` (None when unknown) and `field`
    (like `states.asking.on[0].guard`) name the place; `spec`/`state`/`event` as SpecError."""

    def __init__(self, problem: str, *, path: str = "<data>", line: int | None = None,
                 field: str = "", spec: str = "?", state: str | None = None,
                 event: str | None = None) -> None:
        where = path + (f":{line}" if line is not None else "")
        text = f"{where}: {field + ': ' if field else ''}{problem}"
        ValueError.__init__(self, text)
        self.spec, self.state, self.event = spec, state, event
        self.path, self.line, self.field, self.problem = path, line, field, problem


class TemplateError(ValueError):
    """A reply template that reaches past the session's data, or a field the data lacks."""


# -- templates ---------------------------------------------------------------------------------
_FORMATTER = string.Formatter()


def _check_template(text: str) -> tuple[tuple[str, str | None, str], ...]:
    """The template's pieces `(literal, field or None, format_spec)`; `TemplateError` for a
    field that is not a plain data key (attributes, indexes, positions, conversions, nested
    fields)."""
    pieces: list[tuple[str, str | None, str]] = []
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise TemplateError(f"template {text!r} is malformed: {exc}") from None
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None, ""))
            continue
        if not field.isidentifier() or field.startswith("_"):
            raise TemplateError(
                f"template field {{{field}}} is refused: a field names one key of the session's "
                "data (letters, digits, _; not starting with _): no attributes, indexes or "
                "positions")
        if conversion is not None:
            raise TemplateError(f"template field {{{field}!{conversion}}} is refused: no "
                                "conversions")
        if spec and ("{" in spec or "}" in spec):
            raise TemplateError(f"template field {{{field}:{spec}}} is refused: no nested fields")
        pieces.append((literal, field, spec or ""))
    return tuple(pieces)


class Template:
    """A reply action from a text template: `{key}` is the session's `data[key]` (formatted
    with its format spec); the template is checked when built (see `_check_template`)."""

    __slots__ = ("__name__", "pieces", "text")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TemplateError(f"a template is a str, got {text!r}")
        self.text = text
        self.pieces = _check_template(text)
        self.__name__ = "reply"

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _ in self.pieces if f is not None)

    def render(self, data: Mapping[str, Any]) -> str:
        out: list[str] = []
        for literal, field, spec in self.pieces:
            out.append(literal)
            if field is not None:
                if field not in data:
                    raise TemplateError(f"template {self.text!r}: the session's data has no "
                                        f"{field!r}")
                value = data[field]
                if not isinstance(value, str | int | float | bool | list | dict) \
                        and value is not None:
                    raise TemplateError(f"template {self.text!r}: {field!r} is not JSON data")
                out.append(format(value, spec))
        return "".join(out)

    def __call__(self, ctx: Context) -> None:
        ctx.reply(self.render(ctx.data))

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


class Both:
    """An action, then a reply template (a file's `action:` with `reply:`)."""

    __slots__ = ("__name__", "action", "reply")

    def __init__(self, action: Callable[[Context], Any], reply: Template) -> None:
        self.action, self.reply = action, reply
        self.__name__ = getattr(action, "__name__", "action")

    def __call__(self, ctx: Context) -> Any:
        result = self.action(ctx)
        if inspect.isawaitable(result):
            async def then() -> None:
                await result
                self.reply(ctx)
            return then()
        self.reply(ctx)
        return None


class WordClassifier:
    """A classifier from a word table: `/cmd` -> `cmd` (or the event its word names), a
    plain text equal to a word (case-insensitive, spaces trimmed) -> its event, any other
    text -> `message`."""

    __slots__ = ("__name__", "table", "words")

    def __init__(self, words: Mapping[str, str]) -> None:
        self.words = dict(words)
        self.table = {w.casefold(): e for w, e in self.words.items()}
        self.__name__ = "words"

    def __call__(self, event: Any) -> str:
        name = classify_text(event)
        if name != "message":
            return self.table.get(name.casefold(), name)
        text = event if isinstance(event, str) else event.text
        return self.table.get(" ".join(text.split()).casefold(), "message")


# -- reading -------------------------------------------------------------------------------------
class _Lines:
    """Field path -> line (1-based), where the format tells."""

    def __init__(self) -> None:
        self.at: dict[Path_, int] = {}

    def line(self, path: Path_) -> int | None:
        while True:
            found = self.at.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]


def field_name(path: Sequence[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _yaml_data(text: str, source: str) -> tuple[Any, _Lines]:
    import yaml

    lines = _Lines()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise SpecFileError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=source,
                            line=line) from None
    if node is None:
        return None, lines
    loader = yaml.SafeLoader("")

    def build(n: Any, path: Path_, line: int | None = None) -> Any:
        # A mapping's value is at its key's line (a nested mapping starts a line below).
        lines.at[path] = n.start_mark.line + 1 if line is None else line
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                # A key is its text: YAML 1.1 would read `on:` as True and `1:` as 1.
                key = (key_node.value if isinstance(key_node, yaml.ScalarNode)
                       else str(loader.construct_object(key_node)))
                if key in out:
                    raise SpecFileError(f"duplicate key {key!r}", path=source,
                                        line=key_node.start_mark.line + 1,
                                        field=field_name(path))
                out[key] = build(value_node, (*path, key), key_node.start_mark.line + 1)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(v, (*path, i)) for i, v in enumerate(n.value)]
        return loader.construct_object(n)

    return build(node, ()), lines


def _json_data(text: str, source: str) -> tuple[Any, _Lines]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise SpecFileError(f"duplicate key {key!r}", path=source,
                                    line=_key_line(text, key))
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise SpecFileError(f"not valid JSON: {exc.msg}", path=source, line=exc.lineno) from None
    try:  # JSON is YAML: its composer knows the lines (best effort: tabs may defeat it)
        _, lines = _yaml_data(text, source)
    except SpecFileError:
        lines = _Lines()
    return data, lines


def _key_line(text: str, key: str) -> int | None:
    found = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return None if found is None else text.count("\n", 0, found.start()) + 1


def _toml_data(text: str, source: str) -> tuple[Any, _Lines]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise SpecFileError(f"not valid TOML: {exc}", path=source,
                            line=int(found[1]) if found else None) from None
    lines = _Lines()
    # tomllib keeps no positions: each key's line is found in the text (best effort).
    index: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[{1,2}\s*([^\]]+?)\s*\]{1,2}", raw) or re.match(
            r"\s*([A-Za-z0-9_.\"'-]+)\s*=", raw)
        if m:
            index.setdefault(m[1].replace('"', "").replace("'", "").split(".")[-1], number)

    def walk(value: Any, path: Path_) -> None:
        if path and isinstance(path[-1], str) and path[-1] in index:
            lines.at[path] = index[path[-1]]
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(data, ())
    return data, lines


def read_data(path: str | Path) -> tuple[dict[str, Any], _Lines, str]:
    """A spec file's data, its lines, and its format; `SpecFileError` if unreadable."""
    p = Path(path)
    source = str(path)
    fmt = SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise SpecFileError(f"unknown spec file type {p.suffix!r}: use .yaml, .yml, .toml or "
                            ".json", path=source)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecFileError(f"cannot read it: {exc}", path=source) from None
    reader = {"yaml": _yaml_data, "json": _json_data, "toml": _toml_data}[fmt]
    data, lines = reader(text, source)
    if not isinstance(data, dict):
        raise SpecFileError(f"a spec file holds a mapping (name, initial, states, ...), got "
                            f"{type(data).__name__}", path=source, line=1)
    return data, lines, fmt


_SCHEMA: dict[str, Any] | None = None


def schema() -> dict[str, Any]:
    """The published JSON Schema of spec files (`SCHEMA_PATH`)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return _SCHEMA


def _check_schema(data: Mapping[str, Any], lines: _Lines, source: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data),
                    key=lambda e: (lines.line(tuple(e.absolute_path)) or 0, list(e.absolute_path)))
    if not errors:
        return
    error = errors[0]
    best = jsonschema.exceptions.best_match([error]) or error
    # A oneOf/anyOf error: name the most specific reason found under it.
    deepest = max([best, *best.context], key=lambda e: len(e.absolute_path)) if best.context \
        else best
    at = tuple(deepest.absolute_path)
    raise SpecFileError(deepest.message, path=source, line=lines.line(at),
                        field=field_name(at) or "(top level)", spec=str(data.get("name", "?")))


# -- building ------------------------------------------------------------------------------------
class _Builder:
    def __init__(self, data: Mapping[str, Any], registry: Registry, lines: _Lines,
                 source: str) -> None:
        self.data, self.registry, self.lines, self.source = data, registry, lines, source
        self.name = str(data.get("name", "?"))

    def fail(self, problem: str, path: Path_, state: str | None = None,
             event: str | None = None) -> SpecFileError:
        return SpecFileError(problem, path=self.source, line=self.lines.line(path),
                             field=field_name(path), spec=self.name, state=state, event=event)

    def named(self, name: str, what: str, path: Path_, state: str | None = None,
              event: str | None = None) -> Callable[..., Any]:
        fn = self.registry.get(name)
        if fn is None:
            known = ", ".join(sorted(self.registry)) or "the registry is empty"
            raise self.fail(f"unknown {what} {name!r}: names are resolved only from the "
                            f"registry the program passes (known: {known})", path, state, event)
        if not callable(fn) or isinstance(fn, Spec):
            raise self.fail(f"registry entry {name!r} is not callable", path, state, event)
        found: Callable[..., Any] = fn
        return found

    def template(self, text: str, path: Path_, state: str | None,
                 event: str | None) -> Template:
        try:
            return Template(text)
        except TemplateError as exc:
            raise self.fail(str(exc), path, state, event) from None

    def act(self, raw: Any, path: Path_, state: str | None, event: str | None
            ) -> Callable[[Context], Any] | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            return self.template(raw, path, state, event)
        return self.action_reply(raw.get("action"), raw.get("reply"), path, state, event)

    def action_reply(self, action: str | None, reply: str | None, path: Path_,
                     state: str | None, event: str | None) -> Callable[[Context], Any] | None:
        fn = None if action is None else self.named(action, "action", (*path, "action"),
                                                     state, event)
        tpl = None if reply is None else self.template(reply, (*path, "reply"), state, event)
        if fn is not None and tpl is not None:
            return Both(fn, tpl)
        return fn if fn is not None else tpl

    def target(self, raw: str, states: Mapping[str, Any]) -> Target:
        return _MARKERS.get(raw, raw)

    def on(self, raw: Mapping[str, Any], path: Path_, state: str | None) -> On:
        event = raw["event"]
        guard = None if "guard" not in raw else self.named(raw["guard"], "guard",
                                                           (*path, "guard"), state, event)
        return On(event, self.target(raw["target"], {}), guard=guard,
                  action=self.action_reply(raw.get("action"), raw.get("reply"), path, state,
                                           event),
                  reset_timeout=raw.get("reset_timeout", True))

    def timeout(self, raw: Mapping[str, Any], path: Path_, state: str) -> Timeout:
        when = []
        for i, w in enumerate(raw.get("when", ())):
            wp = (*path, "when", i)
            when.append(When(self.target(w["target"], {}),
                             guard=self.named(w["guard"], "guard", (*wp, "guard"), state,
                                              "timeout"),
                             action=self.action_reply(w.get("action"), w.get("reply"), wp,
                                                      state, "timeout")))
        return Timeout(raw["after"], self.target(raw.get("target", "STOP"), {}),
                       action=self.action_reply(raw.get("action"), raw.get("reply"), path,
                                                state, "timeout"),
                       warn_before=raw.get("warn_before"),
                       warn=self.act(raw.get("warn"), (*path, "warn"), state, "timeout"),
                       when=when)

    def call(self, raw: Mapping[str, Any], path: Path_, state: str) -> Call:
        child = self.registry.get(raw["spec"])
        if getattr(self.registry, "stands_in", False) and not isinstance(child, Spec):
            child = _stand_in_child(raw["spec"], raw["on_end"])
        if not isinstance(child, Spec):
            what = "unknown" if child is None else f"not a Spec ({type(child).__name__}):"
            raise self.fail(f"call spec {raw['spec']!r} is {what} a called spec is a Spec in the "
                            "registry the program passes", (*path, "spec"), state, "call")
        return Call(child, on_end={k: self.target(v, {}) for k, v in raw["on_end"].items()},
                    data_key=raw.get("data_key"), timeout=raw.get("timeout", "paused"),
                    unwind=tuple(raw.get("unwind", ())))

    def start(self, raw: Mapping[str, Any] | None) -> Start | None:
        if raw is None:
            return None
        path: Path_ = ("start",)
        parse = None if "parse" not in raw else self.named(raw["parse"], "start parser",
                                                           (*path, "parse"), None, "start")
        kind: Any = raw.get("kind", "member")
        if kind not in ("member", "group"):
            kind = self.named(kind, "start kind chooser", (*path, "kind"), None, "start")
        return Start(parse, kind=kind, usage=raw.get("usage", ""),
                     group_only=raw.get("group_only", False))

    def classify(self, raw: Any) -> Callable[[Any], str]:
        if raw is None:
            return classify_text
        if isinstance(raw, str):
            return self.named(raw, "classifier", ("classify",))
        return WordClassifier(raw["words"])

    def build(self) -> Spec:
        d = self.data
        if "form" in d:
            return self.form(d["form"])
        states_raw: Mapping[str, Any] = d["states"]
        states = []
        for name, raw in states_raw.items():
            path: Path_ = ("states", name)
            states.append(State(
                name,
                on=[self.on(t, (*path, "on", i), name) for i, t in enumerate(raw.get("on", ()))],
                timeout=None if "timeout" not in raw else self.timeout(
                    raw["timeout"], (*path, "timeout"), name),
                enter=self.act(raw.get("enter"), (*path, "enter"), name, None),
                exit=self.act(raw.get("exit"), (*path, "exit"), name, None),
                final=raw.get("final", False),
                call=None if "call" not in raw else self.call(raw["call"], (*path, "call"),
                                                              name)))
        any_state = [self.on(t, ("any_state", i), None)
                     for i, t in enumerate(d.get("any_state", ()))]
        options: dict[str, Any] = {k: d[k] for k in ("queue_limit", "busy_reply",
                                                     "history_limit", "back_limit",
                                                     "nothing_back") if k in d}
        if "busy" in d:
            options["busy"] = Busy(d["busy"])
        return self.spec(lambda: Spec(
            name=d["name"], initial=d.get("initial", next(iter(states_raw))), states=states,
            any_state=any_state, classify=self.classify(d.get("classify")),
            start=self.start(d.get("start")), **options))

    def spec(self, make: Callable[[], Spec]) -> Spec:
        try:
            return make()
        except SpecFileError:
            raise
        except SpecError as exc:
            path: Path_ = ("states", exc.state) if exc.state is not None else ()
            if exc.event is not None and exc.state is not None:
                path = (*path, "timeout") if exc.event == "timeout" else path
            if exc.event == "start":
                path = ("start",)
            problem = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
            raise self.fail(problem, path, exc.state, exc.event) from None

    def form(self, raw: Mapping[str, Any]) -> Spec:
        from convo_fsm import forms

        slots = []
        for i, s in enumerate(raw["slots"]):
            path: Path_ = ("form", "slots", i)
            kind = s.get("type", "text")
            parser: Callable[[str], Any]
            if "parser" in s:
                parser = self.named(s["parser"], "parser", (*path, "parser"), s["name"])
            elif kind == "integer":
                parser = forms.integer(s.get("min"), s.get("max"))
            elif kind == "choice":
                if "options" not in s:
                    raise self.fail("a choice slot needs options", path, s["name"])
                parser = forms.choice(*s["options"])
            elif kind == "date":
                parser = forms.date(s.get("format", "%Y-%m-%d"))
            else:
                parser = forms.text(s.get("max_length", 200), min_length=s.get("min_length", 1))
            extra = {k: s[k] for k in ("optional", "retries", "give_up", "timeout",
                                       "warn_before", "warning", "timeout_message") if k in s}
            slots.append(forms.Slot(s["name"], s["prompt"], parser, **extra))
        d = self.data
        options = {k: raw[k] for k in ("confirm", "intro", "done", "cancelled") if k in raw}
        return self.spec(lambda: forms.form(d["name"], slots, start=self.start(d.get("start")),
                                            **options))


def _stand_in_child(name: str, on_end: Mapping[str, Any]) -> Spec:
    """A called spec for checking a file without its registry: it can end in every final
    state `on_end` names."""
    finals = [k for k in on_end if k not in ("stop", "timeout", "*")]
    return Spec(name=name, initial="running",
                states=[State("running", on=[On(f, f) for f in finals] + [On("stop", STOP)]),
                        *(State(f, final=True) for f in finals)])


def spec_from_data(data: Mapping[str, Any], registry: Registry | None = None, *,
                   source: str = "<data>", lines: _Lines | None = None) -> Spec:
    """A `Spec` from spec-file data (already parsed), checked against the schema first."""
    registry = {} if registry is None else registry
    if not isinstance(registry, Mapping):
        raise TypeError(f"registry must be a mapping of names to callables, got "
                        f"{type(registry).__name__}")
    lines = _Lines() if lines is None else lines
    _check_schema(data, lines, source)
    return _Builder(data, registry, lines, source).build()


def load_spec(path: str | Path, registry: Registry | None = None) -> Spec:
    """The `Spec` a YAML, TOML or JSON file declares; guards and actions named in it are
    resolved from `registry` only. `SpecFileError` (a `SpecError`) names file, line, field."""
    data, lines, _ = read_data(path)
    return spec_from_data(data, registry, source=str(path), lines=lines)


# -- writing -------------------------------------------------------------------------------------
def spec_to_data(spec: Spec, registry: Registry | None = None) -> dict[str, Any]:
    """`spec` as spec-file data; its guards and actions named from `registry` (by identity),
    its templates written as `reply`. A callable the registry does not name is a `SpecError`
    naming where it is."""
    names = {id(fn): name for name, fn in (registry or {}).items()}

    def name_of(fn: Any, what: str, state: str | None, event: str | None) -> str:
        found = names.get(id(fn))
        if found is None:
            raise SpecError(f"{what} {getattr(fn, '__name__', fn)!r} is not in the registry: "
                            "give it a name there to write it to a file", spec=spec.name,
                            state=state, event=event)
        return found

    def action_fields(fn: Any, state: str | None, event: str | None) -> dict[str, Any]:
        if fn is None:
            return {}
        if isinstance(fn, Template):
            return {"reply": fn.text}
        if isinstance(fn, Both):
            return {"action": name_of(fn.action, "action", state, event),
                    "reply": fn.reply.text}
        return {"action": name_of(fn, "action", state, event)}

    def act(fn: Any, state: str | None, event: str | None) -> Any:
        if isinstance(fn, Template):
            return fn.text
        return action_fields(fn, state, event)

    def target(t: Target) -> str:
        return t if isinstance(t, str) else repr(t)

    def on(t: On, state: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"event": t.event, "target": target(t.target)}
        if t.guard is not None:
            out["guard"] = name_of(t.guard, "guard", state, t.event)
        out.update(action_fields(t.action, state, t.event))
        if not t.reset_timeout:
            out["reset_timeout"] = False
        return out

    states: dict[str, Any] = {}
    for s in spec.states:
        raw: dict[str, Any] = {}
        if s.on:
            raw["on"] = [on(t, s.name) for t in s.on]
        if s.timeout is not None:
            to = s.timeout
            tr: dict[str, Any] = {"after": to.after, "target": target(to.target)}
            tr.update(action_fields(to.action, s.name, "timeout"))
            if to.warn_before is not None:
                tr["warn_before"] = to.warn_before
                tr["warn"] = act(to.warn, s.name, "timeout")
            if to.when:
                tr["when"] = [{"target": target(w.target),
                               "guard": name_of(w.guard, "guard", s.name, "timeout"),
                               **action_fields(w.action, s.name, "timeout")} for w in to.when]
            raw["timeout"] = tr
        if s.enter is not None:
            raw["enter"] = act(s.enter, s.name, None)
        if s.exit is not None:
            raw["exit"] = act(s.exit, s.name, None)
        if s.final:
            raw["final"] = True
        if s.call is not None:
            c = s.call
            cd: dict[str, Any] = {"spec": name_of(c.spec, "called spec", s.name, "call"),
                                  "on_end": {k: target(v) for k, v in c.on_end.items()}}
            if c.data_key is not None:
                cd["data_key"] = c.data_key
            if c.timeout != "paused":
                cd["timeout"] = c.timeout
            if c.unwind:
                cd["unwind"] = list(c.unwind)
            raw["call"] = cd
        states[s.name] = raw
    data: dict[str, Any] = {"name": spec.name, "initial": spec.initial}
    if isinstance(spec.classify, WordClassifier):
        data["classify"] = {"words": dict(spec.classify.words)}
    elif spec.classify is not classify_text:
        data["classify"] = name_of(spec.classify, "classifier", None, None)
    defaults = Spec(name="d", initial="d", states=[State("d", final=True)])
    for field in ("queue_limit", "busy_reply", "history_limit", "back_limit", "nothing_back"):
        if getattr(spec, field) != getattr(defaults, field):
            data[field] = getattr(spec, field)
    if spec.busy is not Busy.QUEUE:
        data["busy"] = spec.busy.value
    if spec.start is not None:
        st = spec.start
        sd: dict[str, Any] = {}
        if st.parse is not None:
            sd["parse"] = name_of(st.parse, "start parser", None, "start")
        sd["kind"] = st.kind if isinstance(st.kind, str) else name_of(
            st.kind, "start kind chooser", None, "start")
        if st.usage:
            sd["usage"] = st.usage
        if st.group_only:
            sd["group_only"] = True
        data["start"] = sd
    data["states"] = states
    if spec.any_state:
        data["any_state"] = [on(t, None) for t in spec.any_state]
    if ANY in states:  # never: a state may not be named "*" (SpecError at build)
        raise SpecError("a state named '*'", spec=spec.name)
    return data


def dump_spec(spec: Spec, path: str | Path, registry: Registry | None = None) -> None:
    """Write `spec` as a spec file, YAML or JSON by `path`'s suffix (.yaml, .yml, .json;
    the standard library has no TOML writer)."""
    p = Path(path)
    data = spec_to_data(spec, registry)
    fmt = SUFFIXES.get(p.suffix.lower())
    if fmt == "json":
        p.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    elif fmt == "yaml":
        import yaml
        p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                     encoding="utf-8")
    else:
        raise ValueError(f"dump_spec writes .yaml, .yml or .json, not {p.suffix!r}")
