"""`astrbot.core.star.filter.permission` on convo_fsm. `ADMIN` (and `GROUP_ADMIN` in a
group) passes when `event.is_admin()`: the host marks senders listed in its `admins`."""

from __future__ import annotations

import enum
from typing import Any

from convo_fsm.compat.astrbot.core.star.filter import HandlerFilter

__all__ = ["PermissionType", "PermissionTypeFilter"]


class PermissionType(enum.Flag):
    ADMIN = enum.auto()
    MEMBER = enum.auto()
    GROUP_ADMIN = enum.auto()
    SHARED_GROUP_ADMIN = enum.auto()


class PermissionTypeFilter(HandlerFilter):
    def __init__(self, permission_type: PermissionType, raise_error: bool = True) -> None:
        self.permission_type = permission_type
        self.raise_error = raise_error

    def filter(self, event: Any, cfg: Any) -> bool:
        kind = self.permission_type
        if kind == PermissionType.ADMIN or (kind == PermissionType.GROUP_ADMIN
                                            and event.get_group_id()):
            return bool(event.is_admin())
        if kind == PermissionType.SHARED_GROUP_ADMIN and event.get_group_id():
            return bool(event.is_admin() or event.get_extra("_session_isolated", False))
        return True
