"""`astrbot.core.star.filter.command` on convo_fsm: `CommandFilter`, a command name (with
aliases, and its group's names in front) whose arguments are parsed by the handler's
signature as AstrBot 4.29.3 does: each parameter after `self, event` takes one
whitespace-separated word, converted by its annotation (`int`, `float`, `bool`, `str`,
`X | None`) or its default's type; `GreedyStr` takes the rest. A missing required word or a
bad one raises `ValueError` with AstrBot's message, which the host answers in the chat."""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

from convo_fsm.compat.astrbot.core.star.filter import HandlerFilter

__all__ = ["CommandFilter", "GreedyStr"]


class GreedyStr(str):
    """The last parameter: every word left, joined by spaces."""


def _is_type(value: Any) -> bool:
    return (isinstance(value, type | types.UnionType)
            or typing.get_origin(value) is typing.Union
            or value is inspect.Parameter.empty)


def _convert(name: str, word: str, kind: Any) -> Any:
    if kind is None:
        return int(word) if word.isdigit() else word
    if isinstance(kind, str):  # a str default: the word as it is
        return word
    if isinstance(kind, bool):
        lower = word.lower()
        if lower in ("true", "yes", "1"):
            return True
        if lower in ("false", "no", "0"):
            return False
        raise ValueError(f"参数 {name} 必须是布尔值（true/false, yes/no, 1/0）。")
    if isinstance(kind, int):
        return int(word)
    if isinstance(kind, float):
        return float(word)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return options[0](word) if len(options) == 1 else word
    return kind(word)


class CommandFilter(HandlerFilter):
    def __init__(self, command_name: str, alias: set[str] | None = None,
                 handler_md: Any = None, parent_command_names: list[str] | None = None) -> None:
        self.command_name = command_name
        self.alias = set(alias) if alias else set()
        self.parent_command_names = (parent_command_names if parent_command_names is not None
                                     else [""])
        self.custom_filter_list: list[Any] = []
        self.handler_params: dict[str, Any] = {}
        self.handler_md = None
        if handler_md is not None:
            self.init_handler_md(handler_md)

    def init_handler_md(self, handler_md: Any) -> None:
        self.handler_md = handler_md
        params = list(inspect.signature(handler_md.handler, eval_str=True).parameters.values())
        self.handler_params = {
            p.name: (p.annotation if p.default is inspect.Parameter.empty else p.default)
            for p in params[2:]}  # after self and event

    def get_handler_md(self) -> Any:
        return self.handler_md

    def add_custom_filter(self, custom_filter: Any) -> None:
        self.custom_filter_list.append(custom_filter)

    def custom_filter_ok(self, event: Any, cfg: Any) -> bool:
        return all(f.filter(event, cfg) for f in self.custom_filter_list)

    def print_types(self) -> str:
        parts = []
        for name, kind in self.handler_params.items():
            if isinstance(kind, type):
                parts.append(f"{name}({kind.__name__}),")
            elif isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
                parts.append(f"{name}({kind}),")
            else:
                parts.append(f"{name}({type(kind).__name__})={kind},")
        return "".join(parts).rstrip(",")

    def validate_and_convert_params(self, params: list[str],
                                    param_type: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        items = list(param_type.items())
        for i, (name, kind) in enumerate(items):
            if kind is GreedyStr:
                if i != len(items) - 1:
                    raise ValueError(f"参数 '{name}' (GreedyStr) 必须是最后一个参数。")
                result[name] = " ".join(params[i:])
                break
            if i >= len(params):
                if _is_type(kind):
                    raise ValueError(f"必要参数缺失。该指令完整参数: {self.print_types()}")
                result[name] = kind  # its default
                continue
            try:
                result[name] = _convert(name, params[i], kind)
            except ValueError as exc:
                raise ValueError(f"参数 {name} 类型错误。完整参数: {self.print_types()}") from exc
        return result

    def get_complete_command_names(self) -> list[str]:
        return [f"{parent} {cmd}" if parent else cmd
                for cmd in [self.command_name, *self.alias]
                for parent in self.parent_command_names or [""]]

    def equals(self, message_str: str) -> bool:
        return message_str in self.get_complete_command_names()

    def filter(self, event: Any, cfg: Any) -> bool:
        if not event.is_at_or_wake_command or not self.custom_filter_ok(event, cfg):
            return False
        text = re.sub(r"\s+", " ", event.get_message_str().strip())
        rest = None
        for full in self.get_complete_command_names():
            if text == full or text.startswith(f"{full} "):
                rest = text[len(full):].strip()
        if rest is None:
            return False
        words = [w for w in rest.split(" ") if w]
        event.set_extra("parsed_params", self.validate_and_convert_params(
            words, self.handler_params))
        return True
