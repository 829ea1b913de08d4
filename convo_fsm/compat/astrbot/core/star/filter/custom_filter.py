"""`astrbot.core.star.filter.custom_filter` on convo_fsm: `CustomFilter` (subclass it and
write `filter(event, cfg) -> bool`); `A & B` / `A | B` combine classes or instances."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any

from convo_fsm.compat.astrbot.core.star.filter import HandlerFilter

__all__ = ["CustomFilter", "CustomFilterAnd", "CustomFilterMeta", "CustomFilterOr"]


class CustomFilterMeta(ABCMeta):
    def __and__(cls, other: Any) -> CustomFilterAnd:
        if not (isinstance(other, type) and issubclass(other, CustomFilter)):
            raise TypeError("Operands must be subclasses of CustomFilter.")
        return CustomFilterAnd(cls(), other())

    def __or__(cls, other: Any) -> CustomFilterOr:  # type: ignore[override]
        if not (isinstance(other, type) and issubclass(other, CustomFilter)):
            raise TypeError("Operands must be subclasses of CustomFilter.")
        return CustomFilterOr(cls(), other())


class CustomFilter(HandlerFilter, metaclass=CustomFilterMeta):
    def __init__(self, raise_error: bool = True, **kwargs: Any) -> None:
        self.raise_error = raise_error

    @abstractmethod
    def filter(self, event: Any, cfg: Any) -> bool:
        """Whether the handler runs for `event`."""

    def __or__(self, other: CustomFilter) -> CustomFilterOr:
        return CustomFilterOr(self, other)

    def __and__(self, other: CustomFilter) -> CustomFilterAnd:
        return CustomFilterAnd(self, other)


class _Pair(CustomFilter):
    def __init__(self, filter1: CustomFilter, filter2: CustomFilter) -> None:
        super().__init__()
        if not isinstance(filter1, CustomFilter) or not isinstance(filter2, CustomFilter):
            raise ValueError("CustomFilter class can only operate with other CustomFilter.")
        self.filter1 = filter1
        self.filter2 = filter2


class CustomFilterOr(_Pair):
    def filter(self, event: Any, cfg: Any) -> bool:
        return self.filter1.filter(event, cfg) or self.filter2.filter(event, cfg)


class CustomFilterAnd(_Pair):
    def filter(self, event: Any, cfg: Any) -> bool:
        return self.filter1.filter(event, cfg) and self.filter2.filter(event, cfg)
