"""`astrbot.api.event.filter` on convo_fsm: `filter.command(name)` marks a plugin method as
the handler of `/name`. `PluginHost.load` finds the marked methods of a `Star`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["COMMANDS_ATTR", "command"]

F = TypeVar("F", bound=Callable[..., Any])

COMMANDS_ATTR = "__astrbot_commands__"
"""Attribute on a handler function: the command names it answers."""


def command(command_name: str, alias: Iterable[str] | None = None, **_: Any) -> Callable[[F], F]:
    """Register the decorated method as the handler of `/command_name` (and its aliases)."""
    if not isinstance(command_name, str) or not command_name.strip() or " " in command_name:
        raise ValueError(f"a command name must be one non-empty word, got {command_name!r}")
    names = (command_name, *(alias or ()))

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"filter.command({command_name!r}) decorates a function, got {fn!r}")
        setattr(fn, COMMANDS_ATTR, (*getattr(fn, COMMANDS_ATTR, ()), *names))
        return fn

    return decorate
