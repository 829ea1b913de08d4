"""The compat tree against the installed AstrBot 4.29.3: every public name of the modules
plugins import from (convo_fsm.compat.astrbot.surface.MODULES) exists in
`convo_fsm.compat.astrbot` under the same path, with the same kind (class, callable,
value), or is on the documented NOT_OFFERED list; and that list names only real,
not-offered names. The decorators and the session API take AstrBot's parameter names."""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

import pytest

from convo_fsm.compat.astrbot.surface import MODULES, NOT_OFFERED


def public(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    out = []
    for name in names:
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            continue  # an imported module (`asyncio`, `Comp`) is not API
        if (inspect.isclass(value) or inspect.isfunction(value)) and not str(
                getattr(value, "__module__", "")).startswith("astrbot"):
            continue  # another package's class or function (`Path`, pydantic's BaseModel)
        out.append(name)
    return out


def kind(value: Any) -> str:
    if inspect.isclass(value):
        return "class"
    return "callable" if callable(value) else "value"


@pytest.mark.slow
@pytest.mark.parametrize("path", MODULES)
def test_every_public_name_is_offered_at_the_same_path_or_listed(path: str) -> None:
    real = importlib.import_module(path)
    ours = importlib.import_module("convo_fsm.compat." + path)
    listed = NOT_OFFERED.get(path, {})
    missing = [n for n in public(real) if not hasattr(ours, n) and n not in listed]
    assert missing == [], f"{path}: offer these or list them in surface.NOT_OFFERED"
    wrong_kind = [(n, kind(getattr(real, n)), kind(getattr(ours, n)))
                  for n in public(real) if hasattr(ours, n)
                  and kind(getattr(real, n)) != kind(getattr(ours, n))]
    assert wrong_kind == []
    stale = [n for n in listed if n not in public(real) or hasattr(ours, n)]
    assert stale == [], f"{path}: NOT_OFFERED names AstrBot lacks or that we offer"
    assert all(reason.strip() for reason in listed.values())


DECORATORS = ["command", "command_group", "custom_filter", "event_message_type",
              "permission_type", "platform_adapter_type", "regex", "llm_tool"]


@pytest.mark.slow
@pytest.mark.parametrize("name", DECORATORS)
def test_filter_decorators_take_astrbots_parameters(name: str) -> None:
    from astrbot.api.event import filter as real

    from convo_fsm.compat.astrbot.api.event import filter as ours

    theirs = inspect.signature(getattr(real, name)).parameters
    mine = inspect.signature(getattr(ours, name)).parameters
    named = [p for p, v in theirs.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
    assert list(mine)[:len(named)] == named


@pytest.mark.slow
def test_session_api_takes_astrbots_parameters() -> None:
    from astrbot.core.utils import session_waiter as real

    from convo_fsm.compat.astrbot.core.utils import session_waiter as ours

    for name in ("session_waiter",):
        assert list(inspect.signature(getattr(ours, name)).parameters)[:2] == list(
            inspect.signature(getattr(real, name)).parameters)
    for cls, method in (("SessionController", "keep"), ("SessionController", "stop"),
                        ("SessionWaiter", "__init__"), ("SessionWaiter", "register_wait"),
                        ("SessionWaiter", "trigger")):
        theirs = list(inspect.signature(getattr(getattr(real, cls), method)).parameters)
        mine = list(inspect.signature(getattr(getattr(ours, cls), method)).parameters)
        assert mine[:len(theirs)] == theirs, (cls, method)


@pytest.mark.slow
def test_components_and_chains_give_astrbots_values() -> None:
    import astrbot.core.message.components as real
    from astrbot.core.message.message_event_result import MessageEventResult as RealResult

    import convo_fsm.compat.astrbot.core.message.components as ours
    from convo_fsm.compat.astrbot.core.message.message_event_result import (
        MessageEventResult as OurResult,
    )

    def facts(comp: Any, result: Any) -> list[Any]:
        url = comp.Image.fromURL("https://i.example/a.png")
        disk = comp.Image.fromFileSystem("/tmp/b.png")
        chain = result().message("a").at("bo", 8).message("b").url_image("https://i.example/c")
        return [url.file, disk.file, disk.path, comp.Image.fromBytes(b"xyz").file,
                comp.Record.fromURL("https://r.example/a.wav").file,
                comp.Plain("hi").toDict(), comp.At(qq=5, name="n").toDict(),
                chain.get_plain_text(), chain.get_plain_text(with_other_comps_mark=True),
                [type(c).__name__ for c in chain.chain], str(comp.ComponentType.Plain.value),
                sorted(comp.ComponentTypes)]

    assert facts(ours, OurResult) == facts(real, RealResult)
