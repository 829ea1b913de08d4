"""The pattern plugins of tests/compat/plugins (written against AstrBot's own API) and
their transcripts: what each step sends and the replies it must get. One runner per
world walks the same steps: PluginHost here, real AstrBot in tests/astrbot_real (with the
session_waiter import changed to convo_fsm.adapters.astrbot, and unmodified on AstrBot's
own waiter, whose replies are `astrbot_reply` where it differs, each with its reason)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PLUGINS = Path(__file__).parent / "plugins"
PATTERNS = ["quiz_demo", "menu_demo", "purge_demo", "report_demo", "bomb_demo", "pick_demo",
            "chat_demo"]


def transcript(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PLUGINS / name / "transcript.json").read_text("utf-8"))
    return data


def components(step: dict[str, Any], comp: Any) -> list[Any] | None:
    """The step's message components, built with the components module `comp` (ours or
    AstrBot's)."""
    specs = step.get("components")
    if specs is None:
        return None
    out = []
    for spec in specs:
        if spec["type"] == "File":
            out.append(comp.File(name=spec["name"], file=spec["file"]))
        elif spec["type"] == "Image":
            out.append(comp.Image.fromURL(spec["url"]))
        else:
            raise ValueError(f"transcripts know File and Image, not {spec['type']!r}")
    return out


def render(chain: list[Any]) -> str:
    """A chain as a text-only chat shows it, for either components module: Plain texts,
    `@name `, `[File name]`, `[Image]` and `[Type]` for the rest."""
    parts = []
    for c in chain:
        kind = getattr(c.type, "value", c.type)
        if kind == "Plain":
            parts.append(c.text)
        elif kind == "At":
            parts.append(f"@{c.name or c.qq} ")
        elif kind == "Reply":
            parts.append("")
        elif kind == "File":
            parts.append(f"[File {c.name}]")
        else:
            parts.append(f"[{kind}]")
    return "".join(parts)
