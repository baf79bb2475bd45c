"""Consumer contracts: a client's calls checked against the OpenAPI document its provider publishes.

A consumer (svc-b calling svc-a, say) describes each call it makes as an :class:`Expectation`: the
method and path, the headers and query parameters it sends, an example body, the statuses it
treats as success and the msgspec type it decodes those answers into. :func:`check` then reads
the provider's document (``<provider>/openapi.json``, kept equal to what the provider serves by
the provider's own test, :func:`published_openapi_problems`) and reports every mismatch:

- the path or the method is gone, or a success status is no longer documented;
- the provider requires a header or query parameter the consumer does not send;
- the consumer's example body is not valid against the provider's request schema;
- an answer the provider may give cannot be decoded into the consumer's type: a field the consumer
  needs is absent or optional there, a type or an enum value the consumer does not accept
  (compared structurally, field by field, through references and unions).

So an incompatible change on either side fails a test before anything is deployed. Test-time
helper: request bodies are validated with ``jsonschema`` (a test dependency of the consumer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

_PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Expectation:
    """One call a consumer makes."""

    method: str
    path: str  # a template: /reservations/{order_id}/commit
    success: tuple[int, ...] = (200,)
    response: Any = None  # the type answers are decoded into (None: the body is not read)
    request: Any = None  # an example body as the consumer encodes it (a Struct, dict, ...)
    headers: tuple[str, ...] = ()  # header names the consumer sends
    query: tuple[str, ...] = ()  # query parameter names the consumer may send
    statuses: tuple[int, ...] = field(default=())  # error statuses the consumer handles specially

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def load_document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _operation(document: Mapping[str, Any], expectation: Expectation) -> tuple[dict[str, Any] | None, str]:
    wanted = _PARAM.sub("{}", expectation.path)
    for template, item in document.get("paths", {}).items():
        if _PARAM.sub("{}", template) == wanted:
            operation = item.get(expectation.method.lower())
            if operation is None:
                return (
                    None,
                    f"{expectation}: the provider has {template} but not {expectation.method.upper()}",
                )
            return operation, template
    return None, f"{expectation}: the provider publishes no such path"


def _with_components(schema: Mapping[str, Any], document: Mapping[str, Any]) -> dict[str, Any]:
    return {**schema, "components": document.get("components", {})}


def _json_schema(content: Mapping[str, Any] | None) -> dict[str, Any] | None:
    for media, spec in (content or {}).items():
        if media == "application/json" or (media.endswith("+json") and "problem" not in media):
            return spec.get("schema")
    return None


def check(document: Mapping[str, Any], expectation: Expectation) -> list[str]:
    """Every way ``expectation`` and the provider's ``document`` disagree (empty: compatible)."""
    operation, where = _operation(document, expectation)
    if operation is None:
        return [where]
    problems: list[str] = []
    responses = operation.get("responses", {})
    for status in (*expectation.success, *expectation.statuses):
        if str(status) not in responses:
            problems.append(
                f"{expectation}: status {status} is not documented (documented: {', '.join(responses)})"
            )
    sent = {h.lower() for h in expectation.headers}
    for parameter in operation.get("parameters", []):
        if not parameter.get("required"):
            continue
        name, place = parameter["name"], parameter.get("in")
        if place == "header" and name.lower() not in sent:
            problems.append(f"{expectation}: the provider requires header {name}")
        elif place == "query" and name not in expectation.query:
            problems.append(f"{expectation}: the provider requires query parameter {name}")
    problems += _check_request(document, operation, expectation)
    if expectation.response is not None:
        for status in expectation.success:
            schema = _json_schema(responses.get(str(status), {}).get("content"))
            if schema is None:
                problems.append(f"{expectation}: answer {status} has no JSON body to decode")
                continue
            problems += _check_answers(document, schema, expectation, status)
    return problems


def _check_request(
    document: Mapping[str, Any], operation: Mapping[str, Any], expectation: Expectation
) -> list[str]:
    import jsonschema

    body = operation.get("requestBody")
    if expectation.request is None:
        if body is not None and body.get("required"):
            return [f"{expectation}: the provider requires a body the consumer does not send"]
        return []
    schema = _json_schema((body or {}).get("content"))
    if schema is None:
        return [f"{expectation}: the provider takes no JSON body"]
    instance = msgspec.to_builtins(expectation.request)
    validator = jsonschema.Draft202012Validator(_with_components(schema, document))
    problems = [
        f"{expectation}: request body: {error.message} at {'/'.join(map(str, error.absolute_path)) or '-'}"
        for error in validator.iter_errors(instance)
    ]
    # Caravan's providers refuse unknown fields (forbid_unknown_fields), which the documents do
    # not state: a field the provider does not document is an error too.
    problems += [
        f"{expectation}: request body: {p}" for p in _undocumented(instance, schema, document, "(body)")
    ]
    return problems[:5]


def _undocumented(
    instance: Any, schema: Mapping[str, Any], document: Mapping[str, Any], where: str
) -> list[str]:
    problems = []
    for option in _alternatives(schema, document):
        if isinstance(instance, dict) and option.get("type") == "object" and "properties" in option:
            for key, value in instance.items():
                if key not in option["properties"]:
                    problems.append(f"{where}.{key} is not a field the provider knows")
                else:
                    problems += _undocumented(value, option["properties"][key], document, f"{where}.{key}")
        elif isinstance(instance, list) and option.get("type") == "array" and "items" in option:
            for item in instance:
                problems += _undocumented(item, option["items"], document, f"{where}[]")
    return problems


def _check_answers(
    document: Mapping[str, Any], schema: Mapping[str, Any], expectation: Expectation, status: int
) -> list[str]:
    info = msgspec.inspect.type_info(expectation.response)
    return [f"{expectation}: answer {status}: {p}" for p in _compatible(info, schema, document, "(body)")]


def _resolve(schema: Mapping[str, Any], document: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document.get("components", {}).get("schemas", {}).get(name, {})
    return schema


def _alternatives(schema: Mapping[str, Any], document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The shapes a value may take (``oneOf``/``anyOf`` flattened, references resolved)."""
    schema = _resolve(schema, document)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return [alt for option in schema[key] for alt in _alternatives(option, document)]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


_JSON_TYPES: dict[type, set[str]] = {
    msgspec.inspect.StrType: {"string"},
    msgspec.inspect.IntType: {"integer"},
    msgspec.inspect.FloatType: {"number", "integer"},
    msgspec.inspect.BoolType: {"boolean"},
    msgspec.inspect.NoneType: {"null"},
    msgspec.inspect.DateTimeType: {"string"},
    msgspec.inspect.DateType: {"string"},
    msgspec.inspect.UUIDType: {"string"},
    msgspec.inspect.DecimalType: {"string", "number"},
    msgspec.inspect.ListType: {"array"},
    msgspec.inspect.TupleType: {"array"},
    msgspec.inspect.VarTupleType: {"array"},
    msgspec.inspect.DictType: {"object"},
    msgspec.inspect.StructType: {"object"},
    msgspec.inspect.DataclassType: {"object"},
    msgspec.inspect.TypedDictType: {"object"},
}


def _accepts(info: msgspec.inspect.Type, option: Mapping[str, Any]) -> bool:
    """Whether a value of the provider's shape ``option`` may be decoded as ``info`` (shallow)."""
    if isinstance(info, msgspec.inspect.AnyType) or not option.get("type"):
        return True
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_accepts(t, option) for t in info.types)
    if isinstance(info, msgspec.inspect.EnumType | msgspec.inspect.LiteralType):
        values = (
            {m.value for m in info.cls} if isinstance(info, msgspec.inspect.EnumType) else set(info.values)
        )
        return "enum" in option and set(option["enum"]) <= values
    return option["type"] in _JSON_TYPES.get(type(info), {option["type"]})


def _compatible(
    info: msgspec.inspect.Type, schema: Mapping[str, Any], document: Mapping[str, Any], where: str
) -> list[str]:
    problems = []
    options = _alternatives(schema, document)
    for option in options:
        if not _accepts(info, option):
            shown = option.get("enum") or option.get("type")
            problems.append(
                f"{where}: the provider may send {shown}, the consumer reads {type(info).__name__}"
            )
            continue
        inner = info
        if isinstance(info, msgspec.inspect.UnionType):
            inner = next((t for t in info.types if _accepts(t, option)), info)
        if isinstance(inner, msgspec.inspect.StructType) and option.get("type") == "object":
            properties = option.get("properties", {})
            required = set(option.get("required", []))
            for f in inner.fields:
                if f.encode_name not in properties:
                    if f.required:
                        problems.append(f"{where}.{f.encode_name}: the provider does not send it")
                    continue
                if f.required and f.encode_name not in required:
                    problems.append(f"{where}.{f.encode_name}: the provider may leave it out")
                problems += _compatible(
                    f.type, properties[f.encode_name], document, f"{where}.{f.encode_name}"
                )
        elif isinstance(inner, msgspec.inspect.ListType | msgspec.inspect.VarTupleType) and "items" in option:
            problems += _compatible(inner.item_type, option["items"], document, f"{where}[]")
    return problems


def check_all(document: Mapping[str, Any], expectations: Sequence[Expectation]) -> list[str]:
    return [problem for e in expectations for problem in check(document, e)]


def openapi_of(app: Any) -> dict[str, Any]:
    """The OpenAPI document a Litestar ``app`` serves, as plain JSON data."""
    return json.loads(msgspec.json.encode(app.openapi_schema.to_schema()))


def published_openapi_problems(app: Any, published: Path) -> list[str]:
    """Differences between what ``app`` serves and the document published at ``published``
    (the provider's side of the contract: regenerate with ``write_openapi``)."""
    served = openapi_of(app)
    served.get("info", {}).pop("version", None)
    if not published.exists():
        return [f"{published.name} is missing: write it with caravan_commons.contracts.write_openapi"]
    document = load_document(published)
    document.get("info", {}).pop("version", None)
    if document == served:
        return []
    changed = sorted(
        set(served.get("paths", {})) ^ set(document.get("paths", {}))
        | {p for p in served.get("paths", {}) if served["paths"][p] != document.get("paths", {}).get(p)}
    )
    return [f"{published.name} differs from the served document (paths {', '.join(changed) or 'components'})"]


def write_openapi(app: Any, published: Path) -> None:
    """Publish what ``app`` serves to ``published`` (stable formatting, service version left out)."""
    document = openapi_of(app)
    document.get("info", {}).pop("version", None)
    published.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m caravan_commons.contracts FACTORY SETTINGS OUTPUT``: publish a service's document,
    e.g. ``svc_a.bootstrap:build_app svc_a.config:Settings openapi.json`` (run in the service's
    folder, with its virtualenv)."""
    import importlib
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or any(":" not in a for a in args[:2]):
        print(
            "usage: python -m caravan_commons.contracts module:factory module:SettingsClass OUTPUT",
            file=sys.stderr,
        )
        return 2

    def load(spec: str) -> Any:
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)

    try:
        factory, settings_class = load(args[0]), load(args[1])
    except (ImportError, AttributeError) as exc:
        print(f"contracts: cannot load {exc}", file=sys.stderr)
        return 2
    write_openapi(factory(settings_class(trace_exporter="none")), Path(args[2]))
    print(f"wrote {args[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
