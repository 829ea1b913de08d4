"""`astrbot.core.star.filter.command_group` on convo_fsm: a command group (`/math add 1 2`);
the bare group name answers with the tree of its subcommands, as AstrBot does."""

from __future__ import annotations

import re
from typing import Any

from convo_fsm.compat.astrbot.core.star.filter import HandlerFilter
from convo_fsm.compat.astrbot.core.star.filter.command import CommandFilter

__all__ = ["CommandGroupFilter"]


class CommandGroupFilter(HandlerFilter):
    def __init__(self, group_name: str, alias: set[str] | None = None,
                 parent_group: CommandGroupFilter | None = None) -> None:
        self.group_name = group_name
        self.alias = set(alias) if alias else set()
        self.sub_command_filters: list[CommandFilter | CommandGroupFilter] = []
        self.custom_filter_list: list[Any] = []
        self.parent_group = parent_group

    def add_sub_command_filter(self, sub: CommandFilter | CommandGroupFilter) -> None:
        self.sub_command_filters.append(sub)

    def add_custom_filter(self, custom_filter: Any) -> None:
        self.custom_filter_list.append(custom_filter)

    def custom_filter_ok(self, event: Any, cfg: Any) -> bool:
        return all(f.filter(event, cfg) for f in self.custom_filter_list)

    def get_complete_command_names(self) -> list[str]:
        parents = self.parent_group.get_complete_command_names() if self.parent_group else []
        names = [self.group_name, *self.alias]
        if not parents:
            return names
        return [f"{parent} {name}" for parent in parents for name in names]

    def print_cmd_tree(self, subs: list[CommandFilter | CommandGroupFilter], prefix: str = "",
                       event: Any = None, cfg: Any = None) -> str:
        parts = []
        for sub in subs:
            if event is not None and cfg is not None and not sub.custom_filter_ok(event, cfg):
                continue
            if isinstance(sub, CommandFilter):
                line = f"{prefix}├── {sub.command_name}"
                types_ = sub.print_types()
                line += f" ({types_})" if types_ else " (无参数指令)"
                if sub.handler_md is not None and sub.handler_md.desc:
                    line += f": {sub.handler_md.desc}"
                parts.append(line + "\n")
            else:
                parts.append(f"{prefix}├── {sub.group_name}\n")
                parts.append(sub.print_cmd_tree(sub.sub_command_filters, prefix + "│   ",
                                                event=event, cfg=cfg))
        return "".join(parts)

    def startswith(self, message_str: str) -> bool:
        text = re.sub(r"\s+", " ", message_str.strip())
        return any(text == n or text.startswith(f"{n} ")
                   for n in self.get_complete_command_names())

    def equals(self, message_str: str) -> bool:
        return re.sub(r"\s+", " ", message_str.strip()) in self.get_complete_command_names()

    def filter(self, event: Any, cfg: Any) -> bool:
        if not event.is_at_or_wake_command or not self.custom_filter_ok(event, cfg):
            return False
        if self.equals(event.message_str.strip()):
            tree = self.group_name + "\n" + self.print_cmd_tree(self.sub_command_filters,
                                                                event=event, cfg=cfg)
            raise ValueError(f"参数不足。{self.group_name} 指令组下有如下指令，请参考：\n" + tree)
        return self.startswith(event.message_str)
