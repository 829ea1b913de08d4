"""Specs as data files (`convo_fsm.spec_file`): YAML, TOML and JSON; names resolved only from
the registry; templates that reach nothing but the data; the JSON Schema first, so errors
name file, line and field; `Spec.to_data` round trips on every game; `convo-fsm check`."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

import games
from convo_fsm import Context, Spec, SpecError
from convo_fsm.cli import main
from convo_fsm.spec_file import (
    SCHEMA_PATH,
    SpecFileError,
    Template,
    TemplateError,
    dump_spec,
    load_spec,
    schema,
    spec_from_data,
)
from convo_fsm.storage import fingerprint
from convo_fsm.testing import ConversationTester


def is_42(ctx: Context) -> bool:
    return ctx.text.strip() == "42"


def count(ctx: Context) -> None:
    ctx.data["tries"] = ctx.data.get("tries", 0) + 1


REGISTRY = {"is_42": is_42, "count": count}

QUIZ_YAML = """\
name: quiz
initial: asking
states:
  asking:
    enter: "What is 6 x 7?"
    on:
      - {event: message, target: done, guard: is_42, reply: "Right!"}
      - {event: message, target: KEEP, action: count, reply: "No, try again ({tries})."}
    timeout:
      after: 30
      target: reminded
      warn_before: 10
      warn: "10 s left"
  reminded:
    enter: "Still there? One more chance."
    on:
      - {event: message, target: done, guard: is_42}
    timeout: {after: 30, target: STOP, reply: "Time's up: it was 42."}
  done:
    final: true
    enter: "Thanks for playing."
any_state:
  - {event: exit, target: STOP, reply: "Bye."}
"""

QUIZ_TOML = """\
name = "quiz"
initial = "asking"

[states.asking]
enter = "What is 6 x 7?"
timeout = { after = 30, target = "reminded", warn_before = 10, warn = "10 s left" }

[[states.asking.on]]
event = "message"
target = "done"
guard = "is_42"
reply = "Right!"

[[states.asking.on]]
event = "message"
target = "KEEP"
action = "count"
reply = "No, try again ({tries})."

[states.reminded]
enter = "Still there? One more chance."
on = [{ event = "message", target = "done", guard = "is_42" }]
timeout = { after = 30, target = "STOP", reply = "Time's up: it was 42." }

[states.done]
final = true
enter = "Thanks for playing."

[[any_state]]
event = "exit"
target = "STOP"
reply = "Bye."
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def play_quiz(spec: Spec) -> list[list[str]]:
    t = ConversationTester(spec)
    out = [await t.start("alice"), await t.say("alice", "41"), await t.advance(20),
           await t.advance(10), await t.say("alice", "42")]
    assert t.state("alice") is None
    return [list(x) for x in out]


async def test_a_yaml_toml_and_json_file_declare_the_same_quiz(tmp_path: Path) -> None:
    yaml_spec = load_spec(write(tmp_path, "quiz.yaml", QUIZ_YAML), REGISTRY)
    toml_spec = load_spec(write(tmp_path, "quiz.toml", QUIZ_TOML), REGISTRY)
    data = yaml_spec.to_data(REGISTRY)
    json_spec = load_spec(write(tmp_path, "quiz.json", json.dumps(data, indent=1)), REGISTRY)
    assert toml_spec.to_data(REGISTRY) == data == json_spec.to_data(REGISTRY)
    expected = [["What is 6 x 7?"], ["No, try again (1)."], ["10 s left"],
                ["Still there? One more chance."], ["Thanks for playing."]]
    for spec in (yaml_spec, toml_spec, json_spec):
        assert await play_quiz(spec) == expected


def test_an_unknown_name_is_an_error_naming_it_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "quiz.yaml", QUIZ_YAML)
    with pytest.raises(SpecFileError) as caught:
        load_spec(path, {"count": count})
    err = caught.value
    assert (err.line, err.field, err.state, err.event) == (7, "states.asking.on[0].guard",
                                                            "asking", "message")
    assert str(err).startswith(f"{path}:7: states.asking.on[0].guard: unknown guard 'is_42'")
    assert isinstance(err, SpecError)
    # Nothing is imported by name: a dotted or module:attribute name is just unknown.
    evil = QUIZ_YAML.replace("guard: is_42, reply", "guard: os.system, reply", 1)
    with pytest.raises(SpecFileError, match=r"unknown guard 'os\.system'"):
        load_spec(write(tmp_path, "evil.yaml", evil), REGISTRY)


@pytest.mark.parametrize("template", [
    "{data.__class__}", "{x.__init__.__globals__}", "{x[0]}", "{0}", "{}", "{x!r}",
    "{x:{y}}", "{_private}", "{x", "}",
])
def test_templates_that_reach_past_the_data_are_refused_at_load(
        tmp_path: Path, template: str) -> None:
    text = QUIZ_YAML.replace('"Bye."', json.dumps(template))
    with pytest.raises(SpecFileError) as caught:
        load_spec(write(tmp_path, "t.yaml", text), REGISTRY)
    assert caught.value.line == 23 and caught.value.field == "any_state[0].reply"
    with pytest.raises(TemplateError):
        Template(template)


def test_a_template_fills_only_data_keys() -> None:
    t = Template("{secret} and {n:>3} {{literal}}")
    assert t.render({"secret": "s3", "n": 7}) == "s3 and   7 {literal}"
    assert t.fields == ("secret", "n")
    with pytest.raises(TemplateError, match="has no 'secret'"):
        t.render({"n": 1})
    with pytest.raises(TemplateError, match="not JSON data"):
        t.render({"secret": object(), "n": 1})


@pytest.mark.parametrize(("name", "text", "line", "message"), [
    ("dup.yaml", "name: a\nname: b\nstates: {s: {final: true}}\n", 2, "duplicate key 'name'"),
    ("dup.json", '{"name": "a",\n "states": {"s": {"final": true}},\n "name": "b"}', 1,
     "duplicate key 'name'"),
    ("dup.toml", 'name = "a"\nname = "b"\n', 2, "not valid TOML"),
    ("bad.yaml", "name: a\nstates: [\n", 3, "not valid YAML"),
    ("bad.json", '{"name": "a",\n  "states": }', 2, "not valid JSON"),
    ("list.yaml", "- a\n- b\n", 1, "a spec file holds a mapping"),
])
def test_malformed_files_name_the_line(tmp_path: Path, name: str, text: str, line: int,
                                       message: str) -> None:
    with pytest.raises(SpecFileError, match=message) as caught:
        load_spec(write(tmp_path, name, text))
    assert caught.value.line == line, caught.value


@pytest.mark.parametrize(("old", "new", "line", "field", "message"), [
    ("after: 30\n      target: reminded", "after: soon\n      target: reminded", 10,
     "states.asking.timeout.after", "'soon' is not of type 'number'"),
    ("final: true", "final: 3", 20, "states.done.final", "3 is not of type 'boolean'"),
    ("{event: exit, target: STOP", "{event: exit, goto: STOP", 23, "any_state[0]",
     "('goto' was unexpected)"),
    ("  reminded:\n", "  reminded:\n    colour: red\n", 14, "states.reminded",
     "Additional properties are not allowed ('colour' was unexpected)"),
])
def test_wrong_types_fail_the_schema_with_file_line_and_field(
        tmp_path: Path, old: str, new: str, line: int, field: str, message: str) -> None:
    assert old in QUIZ_YAML
    path = write(tmp_path, "q.yaml", QUIZ_YAML.replace(old, new, 1))
    with pytest.raises(SpecFileError) as caught:
        load_spec(path, REGISTRY)
    assert (caught.value.line, caught.value.field) == (line, field), caught.value
    assert message in str(caught.value)


def test_a_table_error_names_state_and_event_with_the_file(tmp_path: Path) -> None:
    text = QUIZ_YAML.replace("target: reminded", "target: nowhere")
    with pytest.raises(SpecFileError) as caught:
        load_spec(write(tmp_path, "q.yaml", text), REGISTRY)
    err = caught.value
    assert (err.state, err.event, err.field) == ("asking", "timeout", "states.asking.timeout")
    assert "target 'nowhere' is not a declared state" in str(err) and err.line == 9


def test_guarded_timeouts_back_start_and_words_in_a_file(tmp_path: Path) -> None:
    def parse(args: Any) -> dict[str, Any]:
        return {"n": int(args.words[0]) if args.words else 0}

    def big(ctx: Context) -> bool:
        return int(ctx.data["n"]) > 5

    text = """\
name: gate
classify: {words: {again: back, 回去: back}}
start: {parse: parse, kind: group, usage: "[N]"}
states:
  wait:
    on: [{event: message, target: more}]
    timeout:
      after: 5
      target: STOP
      reply: "small {n}"
      when: [{target: more, guard: big, reply: "big {n}"}]
  more:
    enter: "more"
    on: [{event: back, target: BACK}]
"""
    spec = load_spec(write(tmp_path, "gate.yaml", text), {"parse": parse, "big": big})
    assert spec.begin(None, "9").data == {"n": 9} and spec.begin(None).kind == "group"
    assert spec.classify("回去") == "back" and spec.classify("/again") == "back"
    assert spec.uses_back
    to = spec.by_name["wait"].timeout
    assert to is not None and len(to.branches) == 2
    again = spec_from_data(spec.to_data({"parse": parse, "big": big}),
                           {"parse": parse, "big": big})
    assert again.to_data({"parse": parse, "big": big}) == spec.to_data({"parse": parse,
                                                                        "big": big})


async def test_a_form_in_a_file(tmp_path: Path) -> None:
    text = """\
name: signup-file
form:
  intro: "Hello."
  slots:
    - {name: name, prompt: "Name?", max_length: 10}
    - {name: age, prompt: "Age?", type: integer, min: 1, max: 99}
    - {name: plan, prompt: "Plan?", type: choice, options: [free, pro], optional: true}
  confirm: false
  done: "Done."
"""
    spec = load_spec(write(tmp_path, "form.yaml", text))
    t = ConversationTester(spec)
    assert await t.start("ann") == ["Hello.", "Name?"]
    await t.say("ann", "Ann")
    assert await t.say("ann", "100") == [
        "100 is out of range: send a number from 1 to 99. Age?"]
    await t.say("ann", "9")
    assert await t.say("ann", "PRO") == ["Done."]
    assert t.ended("ann").session.data == {"name": "Ann", "age": 9, "plan": "pro"}  # type: ignore[union-attr]


def _game_registry(name: str) -> dict[str, Any]:
    spec = games.load(name)
    module = importlib.import_module(games.GAMES[name].partition(":")[0])
    registry = {k: v for k, v in vars(module).items()
                if callable(v) and not isinstance(v, type) and not k.startswith("__")}
    registry["classify"] = spec.classify
    return registry


@pytest.mark.parametrize("name", sorted(games.GAMES))
def test_every_game_round_trips_through_data_and_files(name: str, tmp_path: Path) -> None:
    spec = games.load(name)
    registry = _game_registry(name)
    data = spec.to_data(registry)
    assert json.loads(json.dumps(data)) == data  # plain data
    again = spec_from_data(json.loads(json.dumps(data)), registry)
    assert again.to_data(registry) == data
    assert fingerprint(again) == fingerprint(spec)  # the same table, as stores see it
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"{name}{suffix}"
        dump_spec(spec, path, registry)
        assert load_spec(path, registry).to_data(registry) == data


def test_to_data_names_a_callable_the_registry_lacks() -> None:
    spec = games.load("guess-number")
    registry = _game_registry("guess-number")
    del registry["is_right"]
    with pytest.raises(SpecError, match="guard 'is_right' is not in the registry") as caught:
        spec.to_data(registry)
    assert (caught.value.state, caught.value.event) == ("guessing", "message")


def test_the_published_schema_is_a_valid_json_schema_that_games_data_passes() -> None:
    import jsonschema

    assert json.loads(SCHEMA_PATH.read_text()) == schema()
    jsonschema.Draft202012Validator.check_schema(schema())
    for name in games.GAMES:
        jsonschema.validate(games.load(name).to_data(_game_registry(name)), schema())


def test_convo_fsm_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "quiz.yaml", QUIZ_YAML)
    assert main(["check", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"{good}: ok: spec 'quiz', 3 states, 4 transitions" in out
    assert "names not resolved (give --registry MODULE:ATTR): is_42, count" in out
    bad = write(tmp_path, "bad.yaml", QUIZ_YAML.replace("final: true", "final: 3"))
    assert main(["check", str(bad)]) == 1
    assert f"{bad}:20: states.done.final: 3 is not of type 'boolean'" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "none.yaml")]) == 2
    calls = write(tmp_path, "calls.yaml", "name: c\nstates:\n  s:\n    call: {spec: child, "
                  "on_end: {done: t, cancelled: STOP}}\n  t: {final: true}\n")
    assert main(["check", str(calls)]) == 0  # a called spec is stood in for as well
    assert "names not resolved (give --registry MODULE:ATTR): child" in capsys.readouterr().out
    assert main(["check", str(good), "--registry", "no_such_module_x:R"]) == 2
    assert "--registry 'no_such_module_x:R': ModuleNotFoundError" in capsys.readouterr().err
    (tmp_path / "reg_mod.py").write_text("from convo_fsm import Context\nR = {}\n")
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["check", str(good), "--registry", "reg_mod:R"]) == 1
        assert "unknown guard 'is_42'" in capsys.readouterr().err
    finally:
        sys.path.remove(str(tmp_path))


async def test_readme_spec_file_example_loads_and_plays(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Specs as data files\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    quiz = load_spec(write(tmp_path, "quiz.yaml", block.group(1)), REGISTRY)
    t = ConversationTester(quiz)
    assert await t.start("ann") == ["What is 6 x 7?"]
    assert await t.say("ann", "41") == ["No (1 tries)."]
    assert await t.say("ann", "42") == ["Right!"]
    assert t.ended("ann").reason == "final"  # type: ignore[union-attr]


async def test_a_sub_conversation_call_in_a_file(tmp_path: Path) -> None:
    from convo_fsm.forms import Slot, form

    address = form("address", [Slot("street", "Street?")], confirm=False, done="",
                   cancelled="")
    text = """\
name: shop-file
states:
  menu:
    enter: "menu"
    on: [{event: order, target: address}]
  address:
    call: {spec: address_form, on_end: {done: confirm, cancelled: menu}, data_key: addr,
           timeout: running, unwind: [quit]}
    on: [{event: quit, target: STOP, reply: "bye"}]
  confirm:
    enter: "ship to {addr}?"
    on: [{event: message, target: STOP}]
"""
    registry = {"address_form": address}
    spec = load_spec(write(tmp_path, "shop.yaml", text), registry)
    call = spec.by_name["address"].call
    assert call is not None and call.spec is address and call.unwind == ("quit",)
    t = ConversationTester(spec)
    await t.start("ann")
    assert await t.say("ann", "/order") == ["Street?"]
    assert await t.say("ann", "Elm") == ["ship to {'street': 'Elm'}?"]
    assert spec_from_data(spec.to_data(registry), registry).to_data(registry) == \
        spec.to_data(registry)
    with pytest.raises(SpecFileError, match="call spec 'address_form' is unknown") as caught:
        load_spec(write(tmp_path, "shop2.yaml", text))
    assert (caught.value.line, caught.value.state, caught.value.event) == (7, "address", "call")
    with pytest.raises(SpecFileError, match="is not a Spec"):
        load_spec(write(tmp_path, "shop3.yaml", text), {"address_form": len})


def _kit_registry() -> dict[str, Any]:
    from convo_fsm.testing import hypothesis as kit

    fns = [*kit.TEXT_GUARDS, *kit.DATA_GUARDS, *kit.ACTIONS, kit.say_where, kit.parse_count]
    return {fn.__name__: fn for fn in fns}


def test_random_specs_round_trip_through_data() -> None:
    from hypothesis import given, settings

    from convo_fsm.testing.hypothesis import specs

    registry = _kit_registry()

    @settings(max_examples=60, deadline=None)
    @given(specs(calls=False))
    def round_trip(spec: Spec) -> None:
        data = spec.to_data(registry)
        again = spec_from_data(json.loads(json.dumps(data)), registry)
        assert again.to_data(registry) == data
        assert fingerprint(again) == fingerprint(spec)

    round_trip()
