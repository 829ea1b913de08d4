"""`astrbot.core.message.components` on convo_fsm: AstrBot's message components as small
mutable records (keyword fields with AstrBot's names and defaults, equality by fields), so
chains can be built, compared in tests and deep-copied. `Image.fromBytes` and friends keep
the data (a `base64://` file) without touching the network or the disk.
"""

from __future__ import annotations

import base64
import enum
import logging
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from convo_fsm.compat.astrbot.core.utils.astrbot_path import get_astrbot_temp_path

__all__ = [
    "RPS",
    "At",
    "AtAll",
    "BaseMessageComponent",
    "ComponentType",
    "ComponentTypes",
    "Contact",
    "Dice",
    "Face",
    "File",
    "Forward",
    "Image",
    "Json",
    "Location",
    "Music",
    "Node",
    "Nodes",
    "Plain",
    "Poke",
    "Record",
    "Reply",
    "Shake",
    "Share",
    "Unknown",
    "Video",
    "file_uri_to_path",
    "get_astrbot_temp_path",
    "is_file_uri",
    "logger",
    "render_chain",
]

logger = logging.getLogger("astrbot")


def is_file_uri(value: str) -> bool:
    return isinstance(value, str) and value.startswith("file://")


def file_uri_to_path(uri: str) -> str:
    """`file:///a/b` -> `/a/b`."""
    return unquote(urlparse(uri).path)


class ComponentType(str, enum.Enum):  # noqa: UP042 - AstrBot's, str() included
    Plain = "Plain"
    Image = "Image"
    Record = "Record"
    Video = "Video"
    File = "File"
    Face = "Face"
    At = "At"
    Node = "Node"
    Nodes = "Nodes"
    Poke = "Poke"
    Reply = "Reply"
    Forward = "Forward"
    RPS = "RPS"
    Dice = "Dice"
    Shake = "Shake"
    Share = "Share"
    Contact = "Contact"
    Location = "Location"
    Music = "Music"
    Json = "Json"
    Unknown = "Unknown"


class BaseMessageComponent:
    """A piece of a message chain: `type` names its kind; fields are keyword attributes
    with the defaults in `_defaults` (AstrBot's field names)."""

    type: Any = ComponentType.Unknown
    _defaults: ClassVar[dict[str, Any]] = {}
    _required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        missing = [name for name in self._required if name not in kwargs]
        if missing:
            # AstrBot's models raise pydantic's ValidationError, a ValueError
            raise ValueError(f"{type(self).__name__} needs {', '.join(missing)}")
        for name, default in self._defaults.items():
            value = kwargs.pop(name, default)
            setattr(self, name, list(value) if isinstance(value, list) else value)
        for name, value in kwargs.items():  # AstrBot's models accept extra fields too
            setattr(self, name, value)

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({args})"

    def toDict(self) -> dict[str, Any]:
        data = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in self._fields().items()}
        return {"type": str(self.type.value).lower(), "data": data}

    def to_dict(self) -> dict[str, Any]:
        return self.toDict()

    def render(self) -> str:
        """How a text-only chat shows this component (tests read replies this way)."""
        return f"[{self.type.value}]"


class Plain(BaseMessageComponent):
    type = ComponentType.Plain
    _defaults: ClassVar[dict[str, Any]] = {"text": "", "convert": True}

    def __init__(self, text: str, convert: bool = True, **_: Any) -> None:
        super().__init__(text=text, convert=convert)

    def render(self) -> str:
        return str(self.text)  # type: ignore[attr-defined]

    def toDict(self) -> dict[str, Any]:
        return {"type": "text", "data": {"text": self.text}}  # type: ignore[attr-defined]


class Face(BaseMessageComponent):
    type = ComponentType.Face
    _defaults: ClassVar[dict[str, Any]] = {"id": 0}


class _Media(BaseMessageComponent):
    """Image, Record, Video: a `file` that is a URL, a file:// URI or base64:// data."""

    @classmethod
    def fromURL(cls, url: str, **kw: Any) -> Any:
        if url.startswith(("http://", "https://")):
            return cls(file=url, **kw)  # (AstrBot's: the URL is the `file`)
        raise ValueError("not a valid url")

    @classmethod
    def fromFileSystem(cls, path: str | Path, **kw: Any) -> Any:
        file_path = Path(path).absolute()
        return cls(file=file_path.as_uri(), path=str(file_path), **kw)

    @classmethod
    def fromBase64(cls, data: str, **kw: Any) -> Any:
        return cls(file=f"base64://{data}", **kw)

    def render(self) -> str:
        return f"[{self.type.value}]"


class Image(_Media):
    type = ComponentType.Image
    _defaults: ClassVar[dict[str, Any]] = {"file": "", "url": "", "path": "", "subType": 0}

    def __init__(self, file: str | None = "", **kw: Any) -> None:
        super().__init__(file=file, **kw)

    @classmethod
    def fromBytes(cls, byte: bytes) -> Image:
        return cls.fromBase64(base64.b64encode(byte).decode())  # type: ignore[no-any-return]

    @classmethod
    def fromIO(cls, io: Any) -> Image:
        return cls.fromBytes(io.read())


class Record(_Media):
    type = ComponentType.Record
    _defaults: ClassVar[dict[str, Any]] = {"file": "", "url": "", "text": None, "path": None}

    def __init__(self, file: str | None = "", **kw: Any) -> None:
        super().__init__(file=file, **kw)


class Video(_Media):
    type = ComponentType.Video
    _defaults: ClassVar[dict[str, Any]] = {"file": "", "url": "", "cover": "", "path": ""}

    def __init__(self, file: str = "", **kw: Any) -> None:
        super().__init__(file=file, **kw)


class File(BaseMessageComponent):
    type = ComponentType.File
    _defaults: ClassVar[dict[str, Any]] = {"name": "", "file_": "", "url": ""}

    def __init__(self, name: str = "", file: str = "", url: str = "", **kw: Any) -> None:
        super().__init__(name=name, file_=file, url=url, **kw)

    @property
    def file(self) -> str:
        return str(self.file_ or self.url)  # type: ignore[attr-defined]

    async def get_file(self, allow_return_url: bool = False) -> str:
        """The local path (or the URL, if allowed): no download here."""
        if self.file_:  # type: ignore[attr-defined]
            return str(self.file_)  # type: ignore[attr-defined]
        if allow_return_url and self.url:  # type: ignore[attr-defined]
            return str(self.url)  # type: ignore[attr-defined]
        raise RuntimeError("convo_fsm's File has no local path and downloads nothing: "
                           "give File(name, file=<path>) in the test")

    def render(self) -> str:
        return f"[File {self.name}]"  # type: ignore[attr-defined]


class At(BaseMessageComponent):
    type = ComponentType.At
    _defaults: ClassVar[dict[str, Any]] = {"qq": "", "name": ""}
    _required: ClassVar[tuple[str, ...]] = ("qq",)

    def render(self) -> str:
        return f"@{self.name or self.qq} "  # type: ignore[attr-defined]

    def toDict(self) -> dict[str, Any]:
        return {"type": "at", "data": {"qq": str(self.qq)}}  # type: ignore[attr-defined]


class AtAll(At):
    _required = ()

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("qq", "all")
        super().__init__(**kw)


class RPS(BaseMessageComponent):
    type = ComponentType.RPS


class Dice(BaseMessageComponent):
    type = ComponentType.Dice


class Shake(BaseMessageComponent):
    type = ComponentType.Shake


class Share(BaseMessageComponent):
    type = ComponentType.Share
    _defaults: ClassVar[dict[str, Any]] = {"url": "", "title": "", "content": "", "image": ""}


class Contact(BaseMessageComponent):
    type = ComponentType.Contact
    _defaults: ClassVar[dict[str, Any]] = {"id": 0}


class Location(BaseMessageComponent):
    type = ComponentType.Location
    _defaults: ClassVar[dict[str, Any]] = {"lat": 0.0, "lon": 0.0, "title": "", "content": ""}


class Music(BaseMessageComponent):
    type = ComponentType.Music
    _defaults: ClassVar[dict[str, Any]] = {"id": 0, "url": "", "audio": "", "title": "",
                                           "content": "", "image": ""}


class Reply(BaseMessageComponent):
    type = ComponentType.Reply
    _defaults: ClassVar[dict[str, Any]] = {
        "id": "", "chain": [], "sender_id": 0, "sender_nickname": "", "time": 0,
        "message_str": "", "text": "", "qq": 0, "seq": 0}

    def render(self) -> str:
        return ""


class Poke(BaseMessageComponent):
    type = ComponentType.Poke
    _defaults: ClassVar[dict[str, Any]] = {"id": 0, "qq": 0}


class Forward(BaseMessageComponent):
    type = ComponentType.Forward
    _defaults: ClassVar[dict[str, Any]] = {"id": ""}


class Node(BaseMessageComponent):
    type = ComponentType.Node
    _defaults: ClassVar[dict[str, Any]] = {"id": 0, "name": "", "uin": "0", "content": [],
                                           "seq": "", "time": 0}

    def __init__(self, content: list[BaseMessageComponent] | None = None, **kw: Any) -> None:
        super().__init__(content=list(content or ()), **kw)

    def render(self) -> str:
        return render_chain(self.content)  # type: ignore[attr-defined]


class Nodes(BaseMessageComponent):
    type = ComponentType.Nodes
    _defaults: ClassVar[dict[str, Any]] = {"nodes": []}

    def __init__(self, nodes: list[Node] | None = None, **kw: Any) -> None:
        super().__init__(nodes=list(nodes or ()), **kw)

    def render(self) -> str:
        return "\n".join(n.render() for n in self.nodes)  # type: ignore[attr-defined]


class Json(BaseMessageComponent):
    type = ComponentType.Json
    _defaults: ClassVar[dict[str, Any]] = {"data": {}}

    def __init__(self, data: str | dict[str, Any] | None = None, **kw: Any) -> None:
        import json

        super().__init__(data=json.loads(data) if isinstance(data, str) else dict(data or {}),
                         **kw)


class Unknown(BaseMessageComponent):
    type = ComponentType.Unknown
    _defaults: ClassVar[dict[str, Any]] = {"text": ""}


ComponentTypes: dict[str, type[BaseMessageComponent]] = {
    "plain": Plain, "text": Plain, "image": Image, "record": Record, "video": Video,
    "file": File, "face": Face, "at": At, "rps": RPS, "dice": Dice, "shake": Shake,
    "share": Share, "contact": Contact, "location": Location, "music": Music,
    "reply": Reply, "poke": Poke, "forward": Forward, "node": Node, "nodes": Nodes,
    "json": Json, "unknown": Unknown,
}


def render_chain(chain: list[BaseMessageComponent] | None) -> str:
    """A chain as the text a text-only chat shows: Plain texts, `@name `, `[Image]`..."""
    return "".join(c.render() for c in chain or ())
