"""A small HCL2 writer for the tree the Nomad renderer builds (blocks, attributes, variables).

The tree: a body is a list of :class:`Attr` and :class:`Block`; a value is a str, int, bool, list,
dict (an attribute map), or :class:`Var` (a reference to an HCL2 variable, ``var.NAME``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Expr:
    """An HCL expression written as it is (a type such as ``string``)."""

    text: str


@dataclass(frozen=True)
class Template:
    """A string that interpolates variables (``"caravan/svc-a:${var.image_tag}"``)."""

    text: str


@dataclass(frozen=True)
class Attr:
    name: str
    value: Any


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: list[Item] = field(default_factory=list)

    def attrs(self) -> dict[str, Any]:
        return {i.name: i.value for i in self.body if isinstance(i, Attr)}

    def blocks(self, type_: str) -> list[Block]:
        return [i for i in self.body if isinstance(i, Block) and i.type == type_]

    def block(self, type_: str) -> Block | None:
        found = self.blocks(type_)
        return found[0] if found else None


Item = Union[Attr, Block]  # noqa: UP007 - a runtime alias


def quote(text: str) -> str:
    """An HCL string literal: JSON escapes, and ``${``/``%{`` escaped so nothing interpolates."""
    return json.dumps(text, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def value(v: Any, indent: int) -> str:
    if isinstance(v, Var):
        return f"var.{v.name}"
    if isinstance(v, Expr):
        return v.text
    if isinstance(v, Template):
        return json.dumps(v.text, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return json.dumps(v)
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, list):
        return "[" + ", ".join(value(x, indent) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        pad = "  " * (indent + 1)
        width = max(len(quote(k)) for k in v)
        lines = [f"{pad}{quote(k).ljust(width)} = {value(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + "\n".join(lines) + "\n" + "  " * indent + "}"
    raise TypeError(f"cannot write {v!r} as HCL")


def dumps(body: Sequence[Item], indent: int = 0) -> str:
    out: list[str] = []
    pad = "  " * indent
    attrs = [i for i in body if isinstance(i, Attr)]
    width = max((len(a.name) for a in attrs), default=0)
    previous: type | None = None
    for item in body:
        if isinstance(item, Attr):
            out.append(f"{pad}{item.name.ljust(width)} = {value(item.value, indent)}")
        else:
            if previous is not None:
                out.append("")
            labels = "".join(f" {quote(label)}" for label in item.labels)
            out.append(f"{pad}{item.type}{labels} {{")
            inner = dumps(item.body, indent + 1)
            if inner:
                out.append(inner)
            out.append(f"{pad}}}")
        previous = type(item)
    return "\n".join(out)
