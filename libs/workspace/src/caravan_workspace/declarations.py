"""Declaration files (plan.toml, service.toml, foundation.toml) decoded into msgspec Structs.

Each file's tables are :class:`Table` Structs (unknown keys refused); :func:`convert` turns the
parsed TOML into them and, when it does not fit, raises :class:`Misfit` saying where and what,
which each loader words as its own one-line error ("stage 2: missing key 'check'", "svc-a/service.toml:
unknown key 'colour'", "foundation.toml line 12: ports must be [first, last]").
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import msgspec

T = TypeVar("T")
Kind = Literal["unknown", "missing", "invalid"]

_MESSAGE = re.compile(
    r"^(?:Object contains unknown field `(?P<unknown>[^`]+)`"
    r"|Object missing required field `(?P<missing>[^`]+)`"
    r"|.*?)(?: - at `\$(?P<path>[^`]*)`)?$"
)
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]|\[\.\.\.\]")


class Table(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A table of a declaration file: its keys are the fields; any other key is refused."""


class Misfit(Exception):
    """The document does not fit its Structs.

    ``kind``: ``unknown`` (a key no field has), ``missing`` (a required key is absent) or
    ``invalid`` (a value of the wrong type or shape). ``table`` is the path (keys and list
    indexes) of the table at fault and ``key`` the key in it; ``inner`` is true when the fault is
    inside that key's value (an item of its list, a key of its table), not the value as a whole.
    """

    def __init__(self, kind: Kind, table: tuple[str | int, ...], key: str, inner: bool = False) -> None:
        super().__init__(f"{kind} {key!r} at {table}")
        self.kind = kind
        self.table = table
        self.key = key
        self.inner = inner

    def wrong_type(self, data: object) -> str:
        """ "'key' has the wrong type (str)", of the key's value in ``data``."""
        return f"{self.key!r} has the wrong type ({type(self.value(data)).__name__})"

    def value(self, data: object) -> object:
        """The value the key holds in ``data`` (the parsed document); None when absent."""
        table = lookup(data, self.table)
        return table.get(self.key) if isinstance(table, Mapping) else None


def lookup(data: object, path: Sequence[str | int]) -> object:
    """The value at ``path`` in nested tables and lists; None when there is none."""
    for step in path:
        if isinstance(step, int) and isinstance(data, list) and step < len(data):
            data = data[step]
        elif isinstance(step, str) and isinstance(data, Mapping):
            data = data.get(step)
        else:
            return None
    return data


def convert(data: Mapping[str, Any], type_: type[T]) -> T:
    """``data`` (parsed TOML) as ``type_``; :class:`Misfit` when it does not fit."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise _misfit(str(exc)) from exc


def _misfit(message: str) -> Misfit:
    match = _MESSAGE.match(message)
    assert match is not None  # the pattern matches any text
    path: list[str | int] = []
    for name, index in _STEP.findall(match["path"] or ""):
        if name:
            path.append(name)
        elif index:
            path.append(int(index))
    if match["unknown"]:
        return Misfit("unknown", tuple(path), match["unknown"])
    if match["missing"]:
        return Misfit("missing", tuple(path), match["missing"])
    keys = [i for i, step in enumerate(path) if isinstance(step, str)]
    if not keys:  # the document itself is not a table
        return Misfit("invalid", (), "")
    last = keys[-1]
    inner = last < len(path) - 1 or match["path"].endswith("[...]")
    return Misfit("invalid", tuple(path[:last]), str(path[last]), inner)


def fields(type_: type, table: Sequence[str | int]) -> list[str]:
    """The keys the Struct at ``table`` (a path from ``type_``) allows, by their names in the file."""
    struct: Any = type_
    for step in table:
        if isinstance(step, str):
            info = next(f for f in msgspec.structs.fields(struct) if f.encode_name == step)
            struct = info.type
        while typing.get_origin(struct) in (list, tuple) or typing.get_origin(struct) in (
            typing.Union,
            types.UnionType,
        ):
            struct = next(a for a in typing.get_args(struct) if a is not type(None))
    return sorted(f.encode_name for f in msgspec.structs.fields(struct))
