"""`astrbot.core.config.astrbot_config` on convo_fsm: `AstrBotConfig`, a dict with
attribute access (`config.key`, None when missing), built from a plugin's
`_conf_schema.json` defaults as AstrBot builds it. It touches the disk only when given a
`config_path` (then it loads that JSON file over the defaults, and `save_config` writes)."""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any

from convo_fsm.compat.astrbot.core.utils.astrbot_path import get_astrbot_data_path

__all__ = ["DEFAULT_VALUE_MAP", "AstrBotConfig", "get_astrbot_data_path", "logger"]

logger = logging.getLogger("astrbot")

DEFAULT_VALUE_MAP: dict[str, Any] = {
    "int": 0, "float": 0.0, "bool": False, "string": "", "text": "", "list": [],
    "file": [], "object": {}, "template_list": [], "dict": {},
}


def schema_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """The config a schema describes: each key's `default`, else its type's default;
    `object` entries recurse into their `items`. An unknown type is a `TypeError`."""
    conf: dict[str, Any] = {}
    for key, spec in schema.items():
        if not isinstance(spec, dict) or spec.get("type") not in DEFAULT_VALUE_MAP:
            raise TypeError(f"config item {key!r}: unsupported type "
                            f"{spec.get('type') if isinstance(spec, dict) else spec!r}; "
                            f"supported: {sorted(DEFAULT_VALUE_MAP)}")
        if spec["type"] == "object":
            conf[key] = schema_defaults(spec.get("items", {}))
        else:
            conf[key] = copy.deepcopy(spec.get("default", DEFAULT_VALUE_MAP[spec["type"]]))
    return conf


class AstrBotConfig(dict[str, Any]):
    """A plugin's (or the bot's) configuration: a dict; `config.key` reads `config["key"]`
    (None when absent), `config.key = v` writes it."""

    def __init__(self, config_path: str = "", default_config: dict[str, Any] | None = None,
                 schema: dict[str, Any] | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "config_path", config_path)
        object.__setattr__(self, "schema", schema)
        defaults = schema_defaults(schema) if schema is not None else copy.deepcopy(
            default_config or {})
        object.__setattr__(self, "default_config", defaults)
        self.update(defaults)
        if config_path and os.path.exists(config_path):
            with open(config_path, encoding="utf-8-sig") as f:
                self.update(json.load(f))

    def __getattr__(self, item: str) -> Any:
        try:
            return self[item]
        except KeyError:
            return None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(f"no config key {key!r}") from None

    def check_exist(self) -> bool:
        return bool(self.config_path) and os.path.exists(self.config_path)

    def save_config(self, replace_config: dict[str, Any] | None = None, *,
                    indent: int = 2) -> None:
        """Merge `replace_config`, then write the file (if this config has a path)."""
        if replace_config:
            self.update(replace_config)
        if self.config_path:
            with open(self.config_path, "w", encoding="utf-8") as f:
                json.dump(dict(self), f, indent=indent, ensure_ascii=False)

    async def save_config_async(self, replace_config: dict[str, Any] | None = None, *,
                                indent: int = 2) -> bool:
        self.save_config(replace_config, indent=indent)
        return True
