"""`astrbot.core.message.message_event_result` on convo_fsm: `MessageChain` (an ordered
list of components with builder methods that return the chain), `MessageEventResult` (a
chain plus whether the event stops), `CommandResult` (the same class, as in AstrBot)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from convo_fsm.compat.astrbot.core.message import components as Comp

__all__ = ["CommandResult", "EventResultType", "MessageChain", "MessageEventResult",
           "ResultContentType"]


class MessageChain:
    """An ordered list of components; the builder methods return the chain itself."""

    def __init__(self, chain: Iterable[Comp.BaseMessageComponent] | None = None,
                 use_t2i_: bool | None = None, use_markdown_: bool | None = None,
                 type: str | None = None) -> None:
        self.chain: list[Comp.BaseMessageComponent] = list(chain or ())
        self.use_t2i_ = use_t2i_
        self.use_markdown_ = use_markdown_
        self.type = type

    def message(self, message: str) -> Any:
        self.chain.append(Comp.Plain(message))
        return self

    def at(self, name: str, qq: str | int) -> Any:
        self.chain.append(Comp.At(qq=qq, name=name))
        return self

    def at_all(self) -> Any:
        self.chain.append(Comp.AtAll())
        return self

    def error(self, message: str) -> Any:
        self.chain.append(Comp.Plain(message))
        return self

    def url_image(self, url: str) -> Any:
        self.chain.append(Comp.Image.fromURL(url))
        return self

    def file_image(self, path: str) -> Any:
        self.chain.append(Comp.Image.fromFileSystem(path))
        return self

    def base64_image(self, base64_str: str) -> Any:
        self.chain.append(Comp.Image.fromBase64(base64_str))
        return self

    def use_t2i(self, use_t2i: bool) -> Any:
        self.use_t2i_ = use_t2i
        return self

    def use_markdown(self, use: bool | None = True) -> Any:
        self.use_markdown_ = use
        return self

    def derive(self, chain: list[Comp.BaseMessageComponent] | None = None) -> MessageChain:
        return MessageChain(chain if chain is not None else list(self.chain), self.use_t2i_,
                            self.use_markdown_, self.type)

    def get_plain_text(self, with_other_comps_mark: bool = False) -> str:
        """The Plain texts, joined by spaces (AstrBot's rule); with the mark, other
        components appear as `[Type]`."""
        if not with_other_comps_mark:
            return " ".join(c.text for c in self.chain if isinstance(c, Comp.Plain))  # type: ignore[attr-defined]
        return " ".join(c.text if isinstance(c, Comp.Plain) else f"[{c.type.value}]"  # type: ignore[attr-defined]
                        for c in self.chain)

    def squash_plain(self) -> Any:
        """Merge all Plain components into one, at the first one's place."""
        texts = [c.text for c in self.chain if isinstance(c, Comp.Plain)]  # type: ignore[attr-defined]
        if texts:
            first = next(i for i, c in enumerate(self.chain) if isinstance(c, Comp.Plain))
            rest = [c for c in self.chain if not isinstance(c, Comp.Plain)]
            rest.insert(first, Comp.Plain("".join(texts)))
            self.chain = rest
        return self

    def render(self) -> str:
        """The chain as a text-only chat shows it (`Comp.render_chain`)."""
        return Comp.render_chain(self.chain)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MessageChain) and self.chain == other.chain

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.chain!r})"


class EventResultType(enum.Enum):
    CONTINUE = enum.auto()
    STOP = enum.auto()


class ResultContentType(enum.Enum):
    LLM_RESULT = enum.auto()
    AGENT_RUNNER_ERROR = enum.auto()
    GENERAL_RESULT = enum.auto()
    STREAMING_RESULT = enum.auto()
    STREAMING_FINISH = enum.auto()


class MessageEventResult(MessageChain):
    """A reply plus whether the event should stop propagating."""

    def __init__(self, chain: Iterable[Comp.BaseMessageComponent] | None = None,
                 use_t2i_: bool | None = None, use_markdown_: bool | None = None,
                 type: str | None = None, result_type: EventResultType | None = None,
                 result_content_type: ResultContentType | None = None,
                 async_stream: Any = None) -> None:
        super().__init__(chain, use_t2i_, use_markdown_, type)
        self.result_type = result_type or EventResultType.CONTINUE
        self.result_content_type = result_content_type or ResultContentType.GENERAL_RESULT
        self.async_stream = async_stream

    def stop_event(self) -> MessageEventResult:
        self.result_type = EventResultType.STOP
        return self

    def continue_event(self) -> MessageEventResult:
        self.result_type = EventResultType.CONTINUE
        return self

    def is_stopped(self) -> bool:
        return self.result_type is EventResultType.STOP

    def set_async_stream(self, stream: Any) -> MessageEventResult:
        self.async_stream = stream
        return self

    def set_result_content_type(self, typ: ResultContentType) -> MessageEventResult:
        self.result_content_type = typ
        return self

    def is_llm_result(self) -> bool:
        return self.result_content_type is ResultContentType.LLM_RESULT

    def is_model_result(self) -> bool:
        return self.result_content_type in (ResultContentType.LLM_RESULT,
                                            ResultContentType.AGENT_RUNNER_ERROR)


CommandResult = MessageEventResult
