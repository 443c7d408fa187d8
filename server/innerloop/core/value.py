"""`Value`: the base of the core's small immutable value classes (frames, events, effects)."""

from __future__ import annotations

from typing import ClassVar


class Value:
    """A value class: its fields (``_fields``, in order, also its ``__slots__``) give its
    equality, hash and repr.

    Written out instead of ``dataclass``: each generated method is an ``exec`` at import, which
    cost the CLI's start ~0.5 ms per frozen dataclass (the tunnel's ~40 frames and events ~30 ms,
    the intercept's effects ~8 ms), and a plain ``__init__`` is the cheapest to call. Treat
    instances as immutable.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def field_values(self) -> tuple[object, ...]:
        return tuple(map(self.__getattribute__, self._fields))  # data fields, not methods

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Value)
        return self.field_values() == other.field_values()

    def __hash__(self) -> int:
        return hash((type(self), self.field_values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self.field_values()))
        return f"{type(self).__name__}({fields})"
