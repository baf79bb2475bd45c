"""The foundation model (foundation/foundation.toml): tiers, ports and allowed flows.

Loading validates the model against the service declarations; every error is one line naming the
file line it is about. The same model feeds the local enforcement (who may call whom) and the
renderers of the deployment stage.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec

from caravan_commons.identity import rule_matches
from caravan_workspace.declarations import Misfit, Table, convert, lookup
from caravan_workspace.services import Service

FOUNDATION_FILE = Path("foundation") / "foundation.toml"
ANY = "*"
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HTTP_METHODS = frozenset(get_args(Method))


class FoundationError(Exception):
    pass


@dataclass(frozen=True)
class Tier:
    name: str
    members: tuple[str, ...]
    ports: tuple[int, int]
    external: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Flow:
    source: str
    target: str  # a member, or "*" for every service of the system
    paths: tuple[str, ...] | None  # None: every path
    line: int
    methods: tuple[str, ...] | None = None  # None: every method

    @property
    def rules(self) -> tuple[str, ...] | None:
        """The allowed-path rules this flow grants (caravan_commons.identity.rule_matches)."""
        if self.paths is None and self.methods is None:
            return None
        prefix = f"{','.join(self.methods)} " if self.methods else ""
        return tuple(prefix + p for p in (self.paths or ("/",)))

    def __str__(self) -> str:
        where = f" {','.join(self.rules)}" if self.rules else ""
        return f"{self.source} → {self.target}{where}"


@dataclass(frozen=True)
class Foundation:
    host: str
    port_range: tuple[int, int]
    tiers: tuple[Tier, ...]
    databases: Mapping[str, str]  # database → owning service
    flows: tuple[Flow, ...]

    def tier_of(self, member: str) -> Tier:
        for tier in self.tiers:
            if member in tier.members:
                return tier
        raise KeyError(member)

    def members(self) -> set[str]:
        return {m for tier in self.tiers for m in tier.members}

    def callers_of(self, target: str) -> dict[str, tuple[str, ...] | None]:
        """Who may call ``target``: caller → allowed rules (None: every method and path)."""
        callers: dict[str, tuple[str, ...] | None] = {}
        for flow in self.flows:
            if flow.target in (target, ANY):
                if flow.rules is None or callers.get(flow.source, ()) is None:
                    callers[flow.source] = None
                else:
                    callers[flow.source] = (*(callers.get(flow.source) or ()), *flow.rules)
        return callers

    def allows(self, caller: str, target: str, path: str = "/", method: str = "GET") -> bool:
        allowed = self.callers_of(target)
        if caller not in allowed:
            return False
        rules = allowed[caller]
        return rules is None or any(rule_matches(rule, method, path) for rule in rules)


class _RuntimeTable(Table, frozen=True):
    port_range: tuple[int, int]
    host: str = "127.0.0.1"


class _TierTable(Table, frozen=True):
    name: str
    members: Annotated[list[str], msgspec.Meta(min_length=1)]
    ports: tuple[int, int]
    external: list[str] = []


class _DatabaseTable(Table, frozen=True):
    name: str
    owner: str


class _FlowTable(Table, frozen=True):
    source: str = msgspec.field(name="from")
    target: str = msgspec.field(name="to")
    paths: list[Annotated[str, msgspec.Meta(pattern="^/")]] | None = None
    methods: Annotated[list[Method], msgspec.Meta(min_length=1)] | None = None


class _FoundationFile(Table, frozen=True):
    runtime: _RuntimeTable
    tier: list[_TierTable] = []
    database: list[_DatabaseTable] = []
    flow: list[_FlowTable] = []


_PORTS = "ports must be [first, last]"
#: What a misfit of each key of each table says (any other: the key has the wrong type).
_MISFITS = {
    ("runtime", "host"): "runtime host {value!r} is not a loopback address",
    ("runtime", "port_range"): _PORTS,
    ("tier", "name"): "a tier needs a name and a non-empty members list",
    ("tier", "members"): "a tier needs a name and a non-empty members list",
    ("tier", "ports"): _PORTS,
    ("tier", "external"): "external must list members of the tier",
    ("database", "name"): "database {value!r} is in no tier",
    ("database", "owner"): "database {db!r} has unknown owner {value!r}",
    ("flow", "from"): "flow from unknown {value!r}",
    ("flow", "to"): "flow {source} → {value!r} goes nowhere: {value!r} is in no tier",
    ("flow", "paths"): "paths must be a list of paths starting with '/'",
    ("flow", "methods"): f"methods must be a non-empty list of {', '.join(sorted(HTTP_METHODS))}",
}


def _header_lines(text: str, header: str) -> list[int]:
    """1-based line numbers of every ``[[header]]`` / ``[header]`` table, in order."""
    return [i for i, line in enumerate(text.splitlines(), start=1) if line.split("#", 1)[0].strip() == header]


def _misfit_error(misfit: Misfit, raw: dict[str, Any], text: str, name: str) -> FoundationError:
    """A misfit of the file as the one-line error that names the line of its table."""
    if not misfit.table:
        if misfit.kind == "unknown":
            return FoundationError(f"{name}: unknown table {misfit.key!r}")
        if misfit.key == "runtime" and not misfit.inner:
            return FoundationError(f"{name}: missing [runtime] table")
        return FoundationError(f"{name}: {misfit.wrong_type(raw)}")
    kind = str(misfit.table[0])
    lines = _header_lines(text, "[runtime]" if kind == "runtime" else f"[[{kind}]]")
    index = misfit.table[1] if len(misfit.table) > 1 else 0
    where = f"{name} line {lines[index]}" if isinstance(index, int) and index < len(lines) else name
    if misfit.kind == "unknown":
        return FoundationError(f"{where}: unknown key {misfit.key!r}")
    template = _MISFITS.get((kind, misfit.key))
    if template is None:
        return FoundationError(f"{where}: {misfit.wrong_type(raw)}")
    entry = lookup(raw, misfit.table)
    entry = entry if isinstance(entry, dict) else {}
    return FoundationError(
        f"{where}: "
        + template.format(value=misfit.value(raw), db=entry.get("name"), source=entry.get("from"))
    )


def _ports(value: tuple[int, int], where: str) -> tuple[int, int]:
    low, high = value
    if not 1024 <= low <= high <= 65535:
        raise FoundationError(f"{where}: port range {low}-{high} must lie within 1024-65535, low to high")
    return low, high


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_foundation(
    text: str, services: Mapping[str, Service], *, name: str = "foundation.toml"
) -> Foundation:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FoundationError(f"{name}: not valid TOML: {exc}") from exc
    try:
        document = convert(raw, _FoundationFile)
    except Misfit as misfit:
        raise _misfit_error(misfit, raw, text, name) from None

    runtime_line = (_header_lines(text, "[runtime]") or [1])[0]
    host = document.runtime.host
    if not _is_loopback(host):
        raise FoundationError(f"{name} line {runtime_line}: runtime host {host!r} is not a loopback address")
    port_range = _ports(document.runtime.port_range, f"{name} line {runtime_line}")

    tiers: list[Tier] = []
    seen_members: dict[str, str] = {}
    for entry, line in zip(document.tier, _header_lines(text, "[[tier]]"), strict=False):
        where = f"{name} line {line}"
        if any(t.name == entry.name for t in tiers):
            raise FoundationError(f"{where}: tier {entry.name!r} is declared twice")
        ports = _ports(entry.ports, where)
        if not (port_range[0] <= ports[0] and ports[1] <= port_range[1]):
            raise FoundationError(
                f"{where}: tier {entry.name!r} ports {ports[0]}-{ports[1]} lie outside the runtime range "
                f"{port_range[0]}-{port_range[1]}"
            )
        for other in tiers:
            if ports[0] <= other.ports[1] and other.ports[0] <= ports[1]:
                raise FoundationError(
                    f"{where}: tier {entry.name!r} ports {ports[0]}-{ports[1]} overlap tier {other.name!r} "
                    f"{other.ports[0]}-{other.ports[1]} (line {other.line})"
                )
        for member in entry.members:
            if member in seen_members:
                raise FoundationError(f"{where}: {member!r} is already in tier {seen_members[member]!r}")
            seen_members[member] = entry.name
        stray = [e for e in entry.external if e not in entry.members]
        if stray:
            raise FoundationError(f"{where}: external {stray[0]!r} is not a member of tier {entry.name!r}")
        tiers.append(Tier(entry.name, tuple(entry.members), ports, tuple(entry.external), line))

    for service in services:
        if service not in seen_members:
            raise FoundationError(f"{name}: service {service!r} (from {service}/service.toml) is in no tier")

    databases: dict[str, str] = {}
    for db, line in zip(document.database, _header_lines(text, "[[database]]"), strict=False):
        where = f"{name} line {line}"
        if db.name not in seen_members:
            raise FoundationError(f"{where}: database {db.name!r} is in no tier")
        if db.owner not in services:
            raise FoundationError(f"{where}: database {db.name!r} has unknown owner {db.owner!r}")
        databases[db.name] = db.owner

    externals = {e for tier in tiers for e in tier.external}
    flows: list[Flow] = []
    for table, line in zip(document.flow, _header_lines(text, "[[flow]]"), strict=False):
        where = f"{name} line {line}"
        source, target, paths, methods = table.source, table.target, table.paths, table.methods
        if source not in seen_members:
            raise FoundationError(f"{where}: flow from unknown {source!r}")
        if target != ANY and target not in seen_members:
            raise FoundationError(
                f"{where}: flow {source} → {target!r} goes nowhere: {target!r} is in no tier"
            )
        if target in externals:
            raise FoundationError(f"{where}: flow {source} → {target} targets an external caller")
        if target in databases and databases[target] != source:
            raise FoundationError(
                f"{where}: flow {source} → {target}: a database is reached by its owner "
                f"{databases[target]} only"
            )
        flow = Flow(
            source, target, tuple(paths) if paths is not None else None, line,
            tuple(methods) if methods is not None else None,
        )  # fmt: skip
        if any((f.source, f.target, f.rules) == (flow.source, flow.target, flow.rules) for f in flows):
            raise FoundationError(f"{where}: flow {flow} is declared twice")
        flows.append(flow)

    model = Foundation(host, port_range, tuple(tiers), databases, tuple(flows))
    for declared in services.values():
        for dep in declared.depends_on:
            if not model.allows(declared.name, dep):
                raise FoundationError(
                    f"{declared.name}/service.toml: depends on {dep} "
                    f"but {name} allows no flow {declared.name} → {dep}"
                )
    return model


def load_foundation(root: Path, services: Mapping[str, Service]) -> Foundation:
    path = root / FOUNDATION_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FoundationError(f"cannot read {FOUNDATION_FILE}: {exc.strerror}") from exc
    return parse_foundation(text, services, name=str(FOUNDATION_FILE))
