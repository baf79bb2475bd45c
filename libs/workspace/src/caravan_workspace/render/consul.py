"""Consul config entries from the foundation flows: ``service-defaults`` (protocol http) for every
deployable, and ``service-intentions`` — deny by default (``* → *``), then for each deployable
exactly the callers the model allows, narrowed by path and method with L7 permissions where the
flow is (a path prefix matches itself and everything below it, never a sibling: ``/stock`` and
``/stock/...``, not ``/stockroom``).

:func:`check_entry` checks an entry against the config-entry structure Consul accepts (Consul
rejects unknown fields with 400).
"""

from __future__ import annotations

from typing import Any

from caravan_workspace.render.model import Caller, Deployable, Deployment

DESCRIPTION = "rendered from foundation/foundation.toml by `invoke render`"


def service_defaults(d: Deployable) -> dict[str, Any]:
    return {"Kind": "service-defaults", "Name": d.name, "Protocol": "http"}


def default_deny() -> dict[str, Any]:
    return {
        "Kind": "service-intentions",
        "Name": "*",
        "Sources": [{"Name": "*", "Action": "deny", "Description": f"deny by default; {DESCRIPTION}"}],
    }


def _permissions(caller: Caller) -> list[dict[str, Any]]:
    perms = []
    for p in caller.permissions or ():
        http: list[dict[str, Any]] = (
            [{}] if p.path is None else [{"PathExact": p.path}, {"PathPrefix": p.path.rstrip("/") + "/"}]
        )
        for match in http:
            if p.methods:
                match = {**match, "Methods": list(p.methods)}
            perms.append({"Action": "allow", "HTTP": match})
    return perms


def intentions(d: Deployable) -> dict[str, Any]:
    sources = []
    for caller in d.callers:
        if caller.source == "client":
            continue  # callers outside the system reach the gateway through its own port, not the mesh
        source: dict[str, Any] = {"Name": caller.source, "Description": DESCRIPTION}
        if caller.permissions is None:
            source["Action"] = "allow"
        else:
            source["Permissions"] = _permissions(caller)
        sources.append(source)
    return {"Kind": "service-intentions", "Name": d.name, "Sources": sources}


def entries(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """File name → config entry, in the order they are applied."""
    out = {
        f"service-defaults-{n}.json": service_defaults(deployment.deployables[n]) for n in deployment.order
    }
    out["service-intentions-default-deny.json"] = default_deny()
    for n in deployment.order:
        out[f"service-intentions-{n}.json"] = intentions(deployment.deployables[n])
    return out


# ------------------------------------------------------------------------------ structure checks

ENTRY_FIELDS = {
    "service-defaults": {"Kind", "Name", "Namespace", "Partition", "Meta", "Protocol", "Mode",
                         "TransparentProxy", "MutualTLSMode", "UpstreamConfig", "Destination",
                         "MaxInboundConnections", "LocalConnectTimeoutMs", "LocalRequestTimeoutMs",
                         "MeshGateway", "ExternalSNI", "Expose", "EnvoyExtensions",
                         "BalanceInboundConnections",
                         "RateLimits"},
    "service-intentions": {"Kind", "Name", "Namespace", "Partition", "Meta", "Sources", "JWT"},
}  # fmt: skip
SOURCE_FIELDS = {"Name", "Peer", "Namespace", "Partition", "SamenessGroup", "Action", "Permissions",
                 "Precedence", "Type", "Description", "LegacyID", "LegacyMeta", "LegacyCreateTime",
                 "LegacyUpdateTime"}  # fmt: skip
PERMISSION_FIELDS = {"Action", "HTTP", "JWT"}
HTTP_FIELDS = {"PathExact", "PathPrefix", "PathRegex", "Methods", "Header"}
PATH_MATCH = ("PathExact", "PathPrefix", "PathRegex")
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
PROTOCOLS = {"tcp", "http", "http2", "grpc"}


def check_entry(entry: dict[str, Any], protocols: dict[str, str] | None = None) -> list[str]:
    """The errors Consul would give for ``entry`` (``PUT /v1/config``); ``protocols`` (service →
    protocol) lets L7 permissions be checked against their destination's protocol."""
    kind, name = entry.get("Kind"), entry.get("Name")
    where = f"{kind} {name}"
    if kind not in ENTRY_FIELDS:
        return [f"{where}: unknown config entry kind {kind!r}"]
    errors = [f"{where}: unknown field {k!r}" for k in sorted(set(entry) - ENTRY_FIELDS[kind])]
    if not isinstance(name, str) or not name:
        errors.append(f"{where}: Name is required")
    if kind == "service-defaults":
        if entry.get("Protocol") not in PROTOCOLS:
            errors.append(f"{where}: Protocol {entry.get('Protocol')!r} is not one of {sorted(PROTOCOLS)}")
        return errors
    sources = entry.get("Sources")
    if not isinstance(sources, list):
        return [*errors, f"{where}: Sources must be a list"]
    seen = set()
    for source in sources:
        at = f"{where} source {source.get('Name')}"
        errors += [f"{at}: unknown field {k!r}" for k in sorted(set(source) - SOURCE_FIELDS)]
        if source.get("Name") in seen:
            errors.append(f"{at}: listed twice")
        seen.add(source.get("Name"))
        action, perms = source.get("Action"), source.get("Permissions")
        if (action is None) == (perms is None):
            errors.append(f"{at}: exactly one of Action and Permissions must be set")
        if action is not None and action not in ("allow", "deny"):
            errors.append(f"{at}: Action must be allow or deny")
        if perms is not None:
            if not perms:
                errors.append(f"{at}: Permissions must not be empty")
            if name == "*":
                errors.append(f"{at}: Permissions cannot be used on a wildcard destination")
            if protocols is not None and protocols.get(str(name)) not in ("http", "http2", "grpc"):
                errors.append(f"{at}: L7 Permissions need protocol http for {name} (service-defaults)")
            for perm in perms:
                errors += [
                    f"{at}: unknown permission field {k!r}" for k in sorted(set(perm) - PERMISSION_FIELDS)
                ]
                if perm.get("Action") not in ("allow", "deny"):
                    errors.append(f"{at}: a permission's Action must be allow or deny")
                http = perm.get("HTTP") or {}
                errors += [f"{at}: unknown HTTP field {k!r}" for k in sorted(set(http) - HTTP_FIELDS)]
                if sum(k in http for k in PATH_MATCH) > 1:
                    errors.append(f"{at}: at most one of PathExact, PathPrefix, PathRegex")
                for k in ("PathExact", "PathPrefix"):
                    if k in http and not str(http[k]).startswith("/"):
                        errors.append(f"{at}: {k} must begin with '/'")
                bad = set(http.get("Methods") or ()) - METHODS
                if bad:
                    errors.append(f"{at}: unknown methods {sorted(bad)}")
    return errors
