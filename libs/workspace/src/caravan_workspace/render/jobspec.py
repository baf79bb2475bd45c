"""The Nomad jobspec structure our jobs use, checked locally (no Nomad agent runs here).

:data:`SPECS` states, for every block a job may hold, its attributes (with the API key and kind of
each), its nested blocks, its labels and where it goes in the API's JSON form — read from Nomad's
jobspec documentation and its ``api`` structs (the HTTP contract is summed up in docs/deploy.md).
Nomad's server silently drops keys it does not know, so a typo would never be reported there:
:func:`check_structure` reports every block and attribute that is not in the structure, a value of
the wrong kind, a missing label, and the errors Nomad's own validation would give
(``POST /v1/validate/job``) for the mistakes a renderer can make.

:func:`from_hcl2` turns what python-hcl2 parses back into the renderer's tree, and :func:`to_api`
turns a tree into the JSON the API takes (``{"Job": ...}``, durations in nanoseconds), so a test
can prove the committed HCL and JSON say the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from caravan_workspace.render.hcl import Attr, Block, Item, Var


@dataclass(frozen=True)
class Spec:
    api: str  # key in the parent's API object
    attrs: dict[str, tuple[str, str]] = field(default_factory=dict)  # hcl name → (API key, kind)
    blocks: tuple[str, ...] = ()  # nested block types (keys of SPECS)
    labels: int = 0
    label_key: str | None = None  # API key the label fills
    repeated: bool = False  # a list in the parent
    free: str | None = None  # "map" (string values), "any" (attributes of any kind), "policy"


def _a(**pairs: str) -> dict[str, tuple[str, str]]:
    """attr=("ApiKey:kind")"""
    return {k: (v.split(":")[0], v.split(":")[1]) for k, v in pairs.items()}


SPECS: dict[str, Spec] = {
    "job": Spec("Job", _a(datacenters="Datacenters:strs", type="Type:str", region="Region:str",
                          namespace="Namespace:str", priority="Priority:int"),
                ("meta", "update", "ui", "group"), labels=1, label_key="ID"),
    "meta": Spec("Meta", free="map"),
    "ui": Spec("UI", _a(description="Description:str"), ("link",)),
    "link": Spec("Links", _a(label="Label:str", url="URL:str"), repeated=True),
    "update": Spec("Update", _a(max_parallel="MaxParallel:int", canary="Canary:int",
                                auto_promote="AutoPromote:bool", auto_revert="AutoRevert:bool",
                                health_check="HealthCheck:str", min_healthy_time="MinHealthyTime:dur",
                                healthy_deadline="HealthyDeadline:dur", stagger="Stagger:dur",
                                progress_deadline="ProgressDeadline:dur")),
    "group": Spec("TaskGroups", _a(count="Count:int", shutdown_delay="ShutdownDelay:dur"),
                  ("meta", "network", "service", "restart", "reschedule", "scaling", "task"),
                  labels=1, label_key="Name", repeated=True),
    "network": Spec("Networks", _a(mode="Mode:str"), ("port",), repeated=True),
    "port": Spec("DynamicPorts", _a(to="To:int"), labels=1, label_key="Label", repeated=True),
    "service": Spec("Services", _a(name="Name:str", port="PortLabel:str", provider="Provider:str",
                                   tags="Tags:strs", canary_tags="CanaryTags:strs"),
                    ("meta", "check", "connect"), repeated=True),
    "check": Spec("Checks", _a(name="Name:str", type="Type:str", path="Path:str", interval="Interval:dur",
                               timeout="Timeout:dur", expose="Expose:bool", port="PortLabel:str",
                               method="Method:str"),
                  ("check_restart",), repeated=True),
    "check_restart": Spec("CheckRestart", _a(limit="Limit:int", grace="Grace:dur",
                                             ignore_warnings="IgnoreWarnings:bool")),
    "connect": Spec("Connect", blocks=("sidecar_service", "sidecar_task")),
    "sidecar_service": Spec("SidecarService", blocks=("proxy",)),
    "proxy": Spec("Proxy", blocks=("upstreams",)),
    "upstreams": Spec("Upstreams", _a(destination_name="DestinationName:str",
                                      local_bind_port="LocalBindPort:int"), repeated=True),
    "sidecar_task": Spec("SidecarTask", blocks=("resources",)),
    "restart": Spec("RestartPolicy", _a(attempts="Attempts:int", interval="Interval:dur", delay="Delay:dur",
                                        mode="Mode:str")),
    "reschedule": Spec("ReschedulePolicy", _a(attempts="Attempts:int", interval="Interval:dur",
                                              delay="Delay:dur", delay_function="DelayFunction:str",
                                              max_delay="MaxDelay:dur", unlimited="Unlimited:bool")),
    "scaling": Spec("Scaling", _a(enabled="Enabled:bool", min="Min:int", max="Max:int"), ("policy",)),
    "policy": Spec("Policy", free="policy"),
    "task": Spec("Tasks", _a(driver="Driver:str", kill_timeout="KillTimeout:dur",
                             kill_signal="KillSignal:str", shutdown_delay="ShutdownDelay:dur",
                             user="User:str"),
                 ("config", "env", "resources", "template", "meta"),
                 labels=1, label_key="Name", repeated=True),
    "config": Spec("Config", free="any"),
    "env": Spec("Env", free="map"),
    "resources": Spec("Resources", _a(cpu="CPU:int", memory="MemoryMB:int", memory_max="MemoryMaxMB:int")),
    "template": Spec("Templates", _a(data="EmbeddedTmpl:str", destination="DestPath:str", env="Envvars:bool",
                                     change_mode="ChangeMode:str", perms="Perms:str",
                                     uid="Uid:int", gid="Gid:int"), repeated=True),
}  # fmt: skip

#: The Nomad Autoscaler's policy block (its free-form ``policy``), checked the same way.
POLICY_ATTRS = {"evaluation_interval": "dur", "cooldown": "dur", "on_check_error": "str"}
CHECK_ATTRS = {"source": "str", "query": "str", "query_window": "dur", "on_error": "str", "group": "str"}
STRATEGIES = {"target-value": {"target": "num", "threshold": "num"}}

_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def duration_ns(text: str) -> int:
    """A Go duration ("30s", "1m30s") in nanoseconds, as the Nomad API takes it."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"invalid duration {text!r}")
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    return round(sum(float(n) * _UNIT_NS[u] for n, u in parts))


# ------------------------------------------------------------------------------ to the API form


def to_api(job: Block) -> dict[str, Any]:
    """The API's JSON form of a job block: ``{"Job": {...}}``."""
    out = _api_body(job, SPECS["job"])
    out["ID"] = out["Name"] = job.labels[0]
    return {"Job": out}


def _api_value(v: Any, kind: str) -> Any:
    if isinstance(v, Var):
        raise ValueError(f"unresolved variable var.{v.name}")
    return duration_ns(v) if kind == "dur" else v


def _api_body(block: Block, spec: Spec) -> dict[str, Any]:
    if spec.free in ("map", "any"):
        return {a.name: a.value for a in block.body if isinstance(a, Attr)}
    if spec.free == "policy":
        return _policy_api(block.body)
    out: dict[str, Any] = {}
    for item in block.body:
        if isinstance(item, Attr):
            key, kind = spec.attrs[item.name]
            out[key] = _api_value(item.value, kind)
            continue
        child = SPECS[item.type]
        body = _api_body(item, child)
        if child.label_key:
            body[child.label_key] = item.labels[0]
        if child.repeated:
            out.setdefault(child.api, []).append(body)
        else:
            out[child.api] = body
    return out


def _policy_api(body: list[Item]) -> dict[str, Any]:
    """Nomad decodes the free-form policy block as nested blocks → lists of one-key maps."""
    out: dict[str, Any] = {}
    for item in body:
        if isinstance(item, Attr):
            out[item.name] = item.value
        else:
            inner = _policy_api(item.body)
            out.setdefault(item.type, []).append({item.labels[0]: [inner]} if item.labels else inner)
    return out


# ------------------------------------------------------------------------------ from python-hcl2


_INTERP = re.compile(r"(?<!\$)\$\{var\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _unquote(v: Any, variables: dict[str, Any] | None = None) -> Any:
    """An HCL string literal's value: variables interpolated, escapes (JSON's, and ``$${``) undone."""
    if not (isinstance(v, str) and len(v) >= 2 and v[0] == '"' and v[-1] == '"'):
        return v
    if variables is not None:
        v = _INTERP.sub(lambda m: str(_lookup(m.group(1), variables)), v)
    return json.loads(v.replace("$${", "${").replace("%%{", "%{"))


def _lookup(name: str, variables: dict[str, Any]) -> Any:
    if name not in variables:
        raise ValueError(f"reference to undeclared variable var.{name}")
    return variables[name]


_VAR = re.compile(r"^\$\{var\.([A-Za-z_][A-Za-z0-9_]*)\}$")


def _plain(v: Any, variables: dict[str, Any]) -> Any:
    if isinstance(v, str):
        m = _VAR.match(v)
        if m:
            return _lookup(m.group(1), variables)
        return _unquote(v, variables)
    if isinstance(v, list):
        return [_plain(x, variables) for x in v]
    if isinstance(v, dict):
        return {_unquote(k): _plain(x, variables) for k, x in v.items() if k != "__is_block__"}
    return v


def _block_entry(x: Any) -> bool:
    """python-hcl2 marks a block body with ``__is_block__``; a label wraps it in a one-key map
    (``{'"label"': {..., '__is_block__': True}}``)."""
    if not isinstance(x, dict):
        return False
    if x.get("__is_block__"):
        return True
    if len(x) == 1:
        ((key, inner),) = x.items()
        return isinstance(key, str) and key.startswith('"') and _block_entry(inner)
    return False


def _is_block(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_block_entry(x) for x in v)


def _blocks(type_: str, raw: list[dict[str, Any]], variables: dict[str, Any]) -> list[Block]:
    out = []
    for entry in raw:
        labels: list[str] = []
        body = entry
        while "__is_block__" not in body:
            ((key, body),) = body.items()
            labels.append(_unquote(key))
        out.append(Block(type_, tuple(labels), _items(body, variables)))
    return out


def _items(raw: dict[str, Any], variables: dict[str, Any]) -> list[Item]:
    items: list[Item] = []
    for key, v in raw.items():
        if key.startswith("__"):  # __is_block__, __comments__, __inline_comments__
            continue
        if _is_block(v):
            items.extend(_blocks(key, v, variables))
        else:
            items.append(Attr(key, _plain(v, variables)))
    return items


def from_hcl2(
    parsed: dict[str, Any], overrides: dict[str, Any] | None = None
) -> tuple[Block, dict[str, Any]]:
    """The job block and the variables' values (defaults, then ``overrides``) of a parsed file."""
    variables: dict[str, Any] = {}
    for var in _blocks("variable", parsed.get("variable", []), {}):
        variables[var.labels[0]] = var.attrs().get("default")
    variables.update(overrides or {})
    jobs = _blocks("job", parsed.get("job", []), variables)
    if len(jobs) != 1:
        raise ValueError(f"a job file holds exactly one job block, found {len(jobs)}")
    stray = sorted(k for k in set(parsed) - {"job", "variable"} if not k.startswith("__"))
    if stray:
        raise ValueError(f"unexpected top-level {stray[0]!r}")
    return jobs[0], variables


# ------------------------------------------------------------------------------ structure checks

_KINDS = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "dur": lambda v: isinstance(v, str) and bool(_DURATION.match(v)),
    "strs": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}


def check_structure(block: Block, type_: str = "job", where: str = "") -> list[str]:
    """Every block and attribute against :data:`SPECS`; the errors, each naming where it is."""
    spec = SPECS[type_]
    here = f"{where}{type_}" + "".join(f' "{label}"' for label in block.labels)
    errors = []
    if len(block.labels) != spec.labels:
        errors.append(f"{here}: takes {spec.labels} label(s), has {len(block.labels)}")
    if spec.free == "map":
        for a in block.body:
            if not isinstance(a, Attr):
                errors.append(f"{here}: nested block {a.type!r} not expected")
            elif not isinstance(a.value, str):
                errors.append(f"{here}: {a.name} must be a string")
        return errors
    if spec.free == "any":
        return [f"{here}: nested block {b.type!r} not expected" for b in block.body if isinstance(b, Block)]
    if spec.free == "policy":
        return check_policy(block, here)
    seen: set[str] = set()
    for item in block.body:
        if isinstance(item, Attr):
            if item.name not in spec.attrs:
                errors.append(f"{here}: unknown attribute {item.name!r}")
            elif not _KINDS[spec.attrs[item.name][1]](item.value):
                errors.append(f"{here}: {item.name} = {item.value!r} is not a {spec.attrs[item.name][1]}")
            if item.name in seen:
                errors.append(f"{here}: attribute {item.name!r} set twice")
            seen.add(item.name)
        elif item.type not in spec.blocks:
            errors.append(f"{here}: unknown block {item.type!r}")
        else:
            if not SPECS[item.type].repeated and not SPECS[item.type].labels and item.type in seen:
                errors.append(f"{here}: block {item.type!r} given twice")
            seen.add(item.type)
            errors += check_structure(item, item.type, f"{here} > ")
    return errors


def check_policy(block: Block, here: str) -> list[str]:
    """The Nomad Autoscaler policy: attributes, ``check "name"`` blocks with source, query and
    one ``strategy "target-value"``."""
    errors = []
    for item in block.body:
        if isinstance(item, Attr):
            kind = POLICY_ATTRS.get(item.name)
            if kind is None:
                errors.append(f"{here}: unknown policy attribute {item.name!r}")
            elif not _KINDS[kind](item.value):
                errors.append(f"{here}: {item.name} = {item.value!r} is not a {kind}")
        elif item.type != "check" or len(item.labels) != 1:
            errors.append(f'{here}: unknown policy block {item.type!r} (checks are `check "name"`)')
        else:
            at = f'{here} > check "{item.labels[0]}"'
            attrs = item.attrs()
            for name, v in attrs.items():
                kind = CHECK_ATTRS.get(name)
                if kind is None or not _KINDS[kind](v):
                    errors.append(f"{at}: bad attribute {name} = {v!r}")
            for name in ("source", "query"):
                if name not in attrs:
                    errors.append(f"{at}: missing {name}")
            strategies = [b for b in item.body if isinstance(b, Block)]
            if len(strategies) != 1 or strategies[0].type != "strategy" or len(strategies[0].labels) != 1:
                errors.append(f'{at}: needs exactly one strategy "name" block')
                continue
            strategy = strategies[0]
            allowed = STRATEGIES.get(strategy.labels[0])
            if allowed is None:
                errors.append(f"{at}: unknown strategy {strategy.labels[0]!r}")
                continue
            for name, v in strategy.attrs().items():
                if name not in allowed or not _KINDS[allowed[name]](v):
                    errors.append(f"{at} > strategy: bad attribute {name} = {v!r}")
            if "target" not in strategy.attrs():
                errors.append(f"{at} > strategy: missing target")
    return errors


def check_semantics(job: Block, *, drain_s: float) -> list[str]:
    """What Nomad's job validation would refuse (POST /v1/validate/job's ValidationErrors), plus
    our own rule: a stopping task gets longer than its drain."""
    errors = []
    name = job.labels[0] if job.labels else "?"
    groups = job.blocks("group")
    if not groups:
        errors.append(f"job {name}: Missing job task groups")
    update = (job.block("update") or Block("update")).attrs()
    if update.get("auto_promote") and not update.get("canary"):
        errors.append(f"job {name}: Auto Promote requires a Canary count greater than zero")
    if (
        "min_healthy_time" in update
        and "healthy_deadline" in update
        and (duration_ns(update["min_healthy_time"]) >= duration_ns(update["healthy_deadline"]))
    ):
        errors.append(f"job {name}: Minimum healthy time must be less than healthy deadline")
    for group in groups:
        g = f"group {group.labels[0] if group.labels else '?'}"
        ports = {p.labels[0] for n in group.blocks("network") for p in n.blocks("port")}
        providers = {s.attrs().get("provider", "consul") for s in group.blocks("service")}
        if len(providers) > 1:
            errors.append(
                f"{g}: Multiple service providers used: task group services must use the same provider"
            )
        for service in group.blocks("service"):
            label = service.attrs().get("port")
            connect = service.block("connect") is not None
            if label is not None and label not in ports and not (connect and str(label).isdigit()):
                named = service.attrs().get("name")
                errors.append(f'{g}: port label "{label}" referenced by services [{named}] does not exist')
            for check in service.blocks("check"):
                c = check.attrs()
                if c.get("type") == "http" and not c.get("path"):
                    errors.append(f"{g}: http type must have http path")
                if c.get("expose") and not connect:
                    errors.append(f"{g}: check {c.get('name')}: expose needs a Connect service")
        scaling = (group.block("scaling") or Block("scaling")).attrs()
        count = group.attrs().get("count", 1)
        if "max" in scaling and isinstance(count, int) and count > scaling["max"]:
            errors.append(f"{g}: task group count must not be greater than maximum count in scaling policy")
        if "min" in scaling and isinstance(count, int) and count < scaling["min"]:
            errors.append(f"{g}: task group count must not be less than minimum count in scaling policy")
        for task in group.blocks("task"):
            t = task.attrs()
            if not t.get("driver"):
                errors.append(f"{g}: Missing task driver")
            if (
                t.get("driver") == "docker"
                and "image" not in (task.block("config") or Block("config")).attrs()
            ):
                errors.append(f"{g}: docker task {task.labels[0]} has no image")
            kill = duration_ns(t.get("kill_timeout", "5s")) / 1e9
            if kill <= drain_s:
                errors.append(f"{g}: kill_timeout {kill:g}s must be longer than the drain ({drain_s:g}s)")
    return errors
