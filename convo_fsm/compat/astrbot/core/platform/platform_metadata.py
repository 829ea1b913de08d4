"""`astrbot.core.platform.platform_metadata` on convo_fsm."""

from __future__ import annotations

__all__ = ["PlatformMetadata"]


class PlatformMetadata:
    """Which platform an event came from: `name` is the adapter type ("aiocqhttp",
    "telegram", ...; the host's default is "local"), `id` the bot instance."""

    def __init__(self, name: str, description: str = "", id: str | None = None,
                 **extra: object) -> None:
        self.name = name
        self.description = description
        self.id = id or name
        for key, value in extra.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"PlatformMetadata(name={self.name!r}, id={self.id!r})"
