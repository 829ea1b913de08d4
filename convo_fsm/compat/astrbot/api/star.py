"""`astrbot.api.star` on convo_fsm: `Star` (a plugin's base class), `Context`, `register`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from convo_fsm.compat.astrbot.api.event import MessageChain

__all__ = ["Context", "Star", "register"]

T = TypeVar("T")


class _Sender(Protocol):
    async def send_message(self, session: str, message_chain: MessageChain) -> bool: ...


class Context:
    """What a plugin gets from its host: here, sending to a chat by its unified_msg_origin."""

    def __init__(self, host: _Sender | None = None) -> None:
        self._host = host

    async def send_message(self, session: str, message_chain: MessageChain) -> bool:
        """Send `message_chain` to the chat `session` (a unified_msg_origin)."""
        if self._host is None:
            raise RuntimeError("this Context has no host to send through")
        return await self._host.send_message(session, message_chain)


class Star:
    """Base class of a plugin. Subclasses define `filter.command` handlers."""

    def __init__(self, context: Context, config: dict[str, Any] | None = None) -> None:
        self.context = context
        self.config = config

    async def initialize(self) -> None:
        """Called by the host after loading."""

    async def terminate(self) -> None:
        """Called by the host when it shuts down."""


def register(name: str, author: str = "", desc: str = "", version: str = "",
             repo: str | None = None) -> Callable[[T], T]:
    """AstrBot's plugin metadata decorator: recorded on the class, nothing else."""

    def decorate(cls: T) -> T:
        setattr(cls, "__astrbot_plugin__", {  # noqa: B010 - a class attribute by name
            "name": name, "author": author, "desc": desc, "version": version, "repo": repo})
        return cls

    return decorate
