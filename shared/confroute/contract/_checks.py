"""Validation helpers for ``from_pb``: each raises ``InvalidInput`` (or a subclass) naming the field.

Field names are dotted paths relative to the top-level message, e.g. ``params.top_p`` or
``messages[2].role``, so an error can be traced to the exact wire field.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

from confroute.errors import InvalidInput

E = TypeVar("E", bound=enum.Enum)
W = TypeVar("W", bound=int)  # a generated proto enum type
Error = type[InvalidInput]


def join(path: str, name: str) -> str:
    """``join("params", "top_p") == "params.top_p"``; an empty path means the top level."""
    return f"{path}.{name}" if path else name


def nonempty(value: str, field: str, error: Error = InvalidInput) -> str:
    """The string itself, unless it is empty or only whitespace."""
    if not value.strip():
        raise error(f"{field} must not be empty", field=field)
    return value


def at_least(value: float, low: float, field: str, error: Error = InvalidInput) -> float:
    """The number itself, unless it is NaN, infinite or below ``low``."""
    if not math.isfinite(value) or value < low:
        raise error(f"{field} must be a finite number >= {low}, got {value}", field=field)
    return value


def count(value: int, low: int, field: str, error: Error = InvalidInput) -> int:
    """The integer itself, unless it is below ``low``."""
    if value < low:
        raise error(f"{field} must be >= {low}, got {value}", field=field)
    return value


def unit_interval(value: float, field: str, *, open_low: bool = False, error: Error = InvalidInput) -> float:
    """The number itself if it lies in [0, 1] (or (0, 1] with ``open_low``); NaN is never accepted."""
    low_ok = value > 0.0 if open_low else value >= 0.0
    if not (low_ok and value <= 1.0):
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise error(f"{field} must be in {interval}, got {value}", field=field)
    return value


def signals(values: Mapping[str, float], field: str) -> Mapping[str, float]:
    """A read-only copy of named scores, each finite and with a non-empty name."""
    for name, value in values.items():
        nonempty(name, f"{field} name")
        if not math.isfinite(value):
            raise InvalidInput(f"{field}[{name}] must be finite, got {value}", field=f"{field}[{name}]")
    return frozen_mapping(values)


def frozen_mapping(values: Mapping[str, float]) -> Mapping[str, float]:
    """A read-only copy, so that a frozen dataclass holding it stays immutable."""
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class EnumCodec(Generic[E, W]):
    """Maps a domain ``enum.Enum`` to a generated proto enum by name: ``PRE`` <-> ``ROUTING_MODE_PRE``.

    ``zero`` is the domain member that the wire's ``*_UNSPECIFIED`` stands for, or None when an
    unset value must be rejected. Proto3 enums accept any int on the wire; unknown ones are rejected.
    """

    domain: type[E]
    wire: type[W]
    prefix: str
    zero: E | None = None

    def to_pb(self, member: E) -> W:
        return self._to_wire[member]

    def from_pb(self, value: int, field: str, error: Error = InvalidInput) -> E:
        member = self._from_wire.get(value)
        if member is not None:
            return member
        if value == 0:
            raise error(f"{field} must be set", field=field)
        raise error(f"{field} has unknown value {value}", field=field)

    @functools.cached_property
    def _to_wire(self) -> dict[E, W]:
        """Each domain member's wire number, looked up by name once (called on every message)."""
        wire = self._wrapper
        return {
            member: cast(W, wire.Value(wire.Name(0) if member is self.zero else self.prefix + member.name))
            for member in self.domain
        }

    @functools.cached_property
    def _from_wire(self) -> dict[int, E]:
        """Each wire number's domain member: 0 is ``zero`` (absent when unset), the others by name."""
        members: dict[int, E] = {}
        for name, number in self._wrapper.items():
            if number == 0:
                if self.zero is not None:
                    members[0] = self.zero
            elif name.startswith(self.prefix) and name[len(self.prefix) :] in self.domain.__members__:
                members[number] = self.domain[name[len(self.prefix) :]]
        return members

    @property
    def _wrapper(self) -> Any:
        """At runtime the generated enum is an EnumTypeWrapper instance, which the stubs don't describe."""
        return self.wire
