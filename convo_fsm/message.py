"""A plain chat message and the session filters that key it.

A filter maps an event to a session key (or None when it does not apply).
Filters are registered once per kind on the engine, never once per session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import attrs

__all__ = ["DEFAULT_FILTERS", "Filter", "Message", "by_group", "by_member", "by_sender", "part"]

Filter: TypeAlias = Callable[[Any], str | None]


def _non_empty(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"Message.{attribute.name} must be a non-empty str, got {value!r}")


def _text(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Message.text must be a str, got {type(value).__name__}")


def _group(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"Message.group must be None or a non-empty str, got {value!r}")


@attrs.frozen(slots=True)
class Message:
    """A text message from `sender`, in `group` (None: a private chat), on `platform`."""

    text: str = attrs.field(validator=_text)
    sender: str = attrs.field(validator=_non_empty)
    group: str | None = attrs.field(default=None, validator=_group)
    platform: str = attrs.field(default="local", validator=_non_empty)


def part(value: str) -> str:
    """One part of a session key: `%` and `:` are escaped (as `%25`, `%3A`), so a key's parts
    can be told apart and two different keys never meet (the group key of chat `g1:bob` is
    not the member key of `bob` in chat `g1`). A part without them is itself."""
    if ":" in value or "%" in value:
        return value.replace("%", "%25").replace(":", "%3A")
    return value


# The filters below inline `part`'s test (they run once per event and filter kind).
def by_sender(event: Message) -> str:
    """One session per sender (the same person in any chat): `PLATFORM:user:SENDER`."""
    platform, sender = event.platform, event.sender
    if ":" in platform or "%" in platform:
        platform = part(platform)
    if ":" in sender or "%" in sender:
        sender = part(sender)
    return f"{platform}:user:{sender}"


def by_member(event: Message) -> str:
    """One session per sender within a chat: in a group, each member has their own
    (`PLATFORM:group:GROUP:SENDER`; in a private chat the sender's key)."""
    platform, sender, group = event.platform, event.sender, event.group
    if ":" in platform or "%" in platform:
        platform = part(platform)
    if ":" in sender or "%" in sender:
        sender = part(sender)
    if group is None:
        return f"{platform}:user:{sender}"  # (by_sender's key)
    if ":" in group or "%" in group:
        group = part(group)
    return f"{platform}:group:{group}:{sender}"


def by_group(event: Message) -> str:
    """One session per chat: in a group, all members share it (`PLATFORM:group:GROUP`)."""
    group = event.group
    if group is None:
        return by_sender(event)
    platform = event.platform
    if ":" in platform or "%" in platform:
        platform = part(platform)
    if ":" in group or "%" in group:
        group = part(group)
    return f"{platform}:group:{group}"


DEFAULT_FILTERS: dict[str, Filter] = {"member": by_member, "group": by_group}
