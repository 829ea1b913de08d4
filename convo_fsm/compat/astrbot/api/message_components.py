"""AstrBot's message components (`astrbot.api.message_components`): enough to build and read
chains. Components are small mutable records, like AstrBot's, so `copy.deepcopy` works."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

__all__ = ["At", "BaseMessageComponent", "Image", "Plain", "render_chain"]


class BaseMessageComponent:
    """A piece of a message chain. `type` names the kind, as in AstrBot."""

    __slots__ = ()
    type: ClassVar[str] = "Unknown"

    def toDict(self) -> dict[str, Any]:
        return {"type": self.type.lower(), "data": attrs.asdict(self)}  # type: ignore[arg-type]

    def render(self) -> str:
        """How a text-only chat shows this component."""
        return f"[{self.type}]"


@attrs.define
class Plain(BaseMessageComponent):
    text: str
    type: ClassVar[str] = "Plain"

    def render(self) -> str:
        return self.text


@attrs.define(kw_only=True)
class At(BaseMessageComponent):
    qq: str | int
    name: str = ""
    type: ClassVar[str] = "At"

    def render(self) -> str:
        return f"@{self.name or self.qq} "


@attrs.define
class Image(BaseMessageComponent):
    file: str | None = ""
    url: str = ""
    type: ClassVar[str] = "Image"

    @staticmethod
    def fromURL(url: str) -> Image:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not a valid url: {url!r}")
        return Image(file=url, url=url)

    @staticmethod
    def fromFileSystem(path: str) -> Image:
        return Image(file=f"file:///{path.lstrip('/')}")

    def render(self) -> str:
        return "[image]"


def render_chain(chain: list[BaseMessageComponent] | None) -> str:
    """A chain as the text a text-only chat would show (Plain texts, `@name`, `[image]`)."""
    return "".join(c.render() for c in chain or ())
