"""What a TARGET names on the command line (`play`, `diagram`, `replay`, `sessions --spec`).

A TARGET is, in this order:

- a spec file, a path ending in .yaml, .yml, .toml or .json (read by
  `convo_fsm.spec_file.load_spec` when this version has it);
- `module:attribute` (the attribute may be dotted) naming a `convo_fsm.Spec`, the module
  imported from the current directory first, as `python -m` would;
- a game name from the `games` registry (`convo-fsm play --list`).

Every failure is a `TargetError` whose message names the problem (the CLI prints it as one
line and exits 2).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from convo_fsm.spec import Spec

__all__ = ["SPEC_SUFFIXES", "Target", "TargetError", "game_module", "games_registry",
           "resolve", "resolve_spec"]

SPEC_SUFFIXES = (".yaml", ".yml", ".toml", ".json")
EXAMPLE = "mymodule:SPEC"


class TargetError(LookupError):
    """A TARGET that names no spec: unknown game, bad module:attribute, not a Spec, a spec
    file that cannot be read."""


@attrs.frozen
class Target:
    """A resolved TARGET: its spec, and its game name when it is one of the games."""

    spec: Spec
    game: str | None = None


def resolve_spec(target: str, registry: str | None = None) -> Spec:
    return resolve(target, registry).spec


def resolve(target: str, registry: str | None = None) -> Target:
    """The spec TARGET names (see the module's docstring). `registry` (MODULE:ATTR, a
    mapping of names to callables) is where a spec file's guards and actions are found."""
    if not isinstance(target, str) or not target.strip():
        raise TargetError("an empty TARGET: give a game name, module:attribute or a spec file")
    if target.lower().endswith(SPEC_SUFFIXES):
        return Target(_spec_file(target, registry))
    if registry is not None:
        raise TargetError(f"--registry is for spec files ({', '.join(SPEC_SUFFIXES)}), "
                          f"not {target!r}")
    if ":" in target:
        return Target(_module_attribute(target))
    games = games_registry()
    if target not in games.GAMES:
        known = ", ".join(sorted(games.GAMES)) or "none"
        raise TargetError(f"unknown game {target!r} (known games: {known}); for another spec "
                          f"give module:attribute (e.g. {EXAMPLE}) or a spec file")
    load = getattr(games, "load", None)
    if load is None:  # a bare registry: its entries are module:attribute
        return Target(_module_attribute(games.GAMES[target]), target)
    try:
        spec = load(target)
    except Exception as exc:  # a game module that fails at import: SpecError, ImportError, ...
        raise TargetError(f"game {target!r} cannot be loaded: {exc}") from exc
    if not isinstance(spec, Spec):
        raise TargetError(f"game {target!r} gives a {type(spec).__name__}, not a convo_fsm.Spec")
    return Target(spec, target)


def _cwd_on_path() -> None:
    # `convo-fsm` runs as a console script: sys.path[0] is its bin/ folder, not the folder
    # the user is in. `python -m` and `python file.py` users expect their own modules found.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _module_attribute(target: str) -> Spec:
    value = _import_attribute(target)
    if not isinstance(value, Spec):
        raise TargetError(f"{target!r} is a {type(value).__name__}, not a convo_fsm.Spec")
    return value


def _import_attribute(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise TargetError(f"{target!r}: expected module:attribute, e.g. {EXAMPLE}")
    _cwd_on_path()
    try:
        value: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise TargetError(f"{target!r}: cannot import module {module_name!r}: no such "
                              f"module here ({os.getcwd()}) or on sys.path") from exc
        raise TargetError(f"{target!r}: cannot import module {module_name!r}: {exc}") from exc
    except Exception as exc:  # a module that fails at import: SpecError, SyntaxError, ...
        raise TargetError(f"{target!r}: cannot import module {module_name!r}: "
                          f"{type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(f"{target!r}: {module_name!r} has no attribute "
                              f"{attribute!r}") from None
    return value


def _spec_file(target: str, registry: str | None = None) -> Spec:
    path = Path(target)
    if not path.is_file():
        raise TargetError(f"spec file {target!r} does not exist")
    try:
        from convo_fsm.spec_file import load_spec  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise TargetError(f"{target!r}: this version of convo-fsm cannot read spec files; "
                          f"give module:attribute (e.g. {EXAMPLE}) or a game name") from None
    names: Any = None
    if registry is not None:
        names = _import_attribute(registry)
        if not isinstance(names, Mapping):
            raise TargetError(f"--registry {registry!r} is a {type(names).__name__}, not a "
                              "mapping of names to guards and actions")
    try:
        spec = load_spec(path, names)
    except Exception as exc:  # the loader names the problem (line, field)
        raise TargetError(f"spec file {target!r}: {exc}") from exc
    if not isinstance(spec, Spec):
        raise TargetError(f"spec file {target!r} gives a {type(spec).__name__}, not a Spec")
    return spec


def games_registry() -> Any:
    try:
        registry = importlib.import_module("games")
    except Exception as exc:
        raise TargetError(f"no game registry: cannot import the games package ({exc})") from exc
    if not isinstance(getattr(registry, "GAMES", None), dict):
        raise TargetError("no game registry: the games package has no GAMES dict")
    return registry


def game_module(name: str) -> ModuleType:
    """The module of game `name` (where its rules, SPEC and start live)."""
    registry = games_registry()
    if name not in registry.GAMES:
        raise TargetError(f"unknown game {name!r}")
    module_name = str(registry.GAMES[name]).partition(":")[0]
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise TargetError(f"game {name!r} cannot be loaded: {exc}") from exc
