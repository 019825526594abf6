"""The served kinds' types (schema.json, Kubernetes 1.35's OpenAPI made small by scripts/gen-kube-schema).

Two uses, both what the API server gets from its Go types: decoding (`decode`: a value of the wrong
JSON type is the 400 the server's decoder answers, an unknown field is dropped and reported so that
`fieldValidation=Strict` can refuse it and `Warn` can warn), and the patch merge keys and strategies
of every list (`field`), which strategic merge patch follows.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import apierrors
from .resources import Resource

Schema = dict[str, Any]
_FREE: Schema = {}
_ZERO: dict[Any, Any] = {"integer": 0, "number": 0, "boolean": False, "string": ""}
_GO_TYPES = {"integer": "int64", "number": "float64", "string": "string", "boolean": "bool", "array": "array",
             "object": "object"}


@lru_cache(maxsize=1)
def definitions() -> dict[str, Schema]:
    return json.loads((Path(__file__).with_name("schema.json")).read_text())["definitions"]


def resolve(schema: Schema | None) -> Schema:
    """The schema itself, or the definition it refers to; {} (anything goes) for None."""
    if not schema:
        return _FREE
    ref = schema.get("$ref")
    if ref:
        merged = dict(definitions().get(ref, _FREE))
        merged.update({k: v for k, v in schema.items() if k != "$ref"})
        return merged
    return schema


@lru_cache(maxsize=64)
def _root_name(api_version: str, kind: str) -> str | None:
    group, _, version = api_version.rpartition("/")
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    return None


def for_kind(api_version: str, kind: str) -> Schema:
    name = _root_name(api_version, kind)
    return resolve({"$ref": name}) if name else _FREE


def for_resource(resource: Resource) -> Schema:
    return for_kind(resource.api_version, resource.kind)


def field(schema: Schema, key: str) -> Schema:
    """The (resolved) schema of `key` in an object of `schema`, with its x-kubernetes-* extensions."""
    schema = resolve(schema)
    props = schema.get("properties")
    if props is not None and key in props:
        return resolve(props[key])
    extra = schema.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else _FREE


def items(schema: Schema) -> Schema:
    return resolve(resolve(schema).get("items"))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _accepts(types: Any, value: Any) -> bool:
    for t in types if isinstance(types, list) else [types]:
        if t == "object" and isinstance(value, dict):
            return True
        if t == "array" and isinstance(value, list):
            return True
        if t == "string" and isinstance(value, str):
            return True
        if t == "boolean" and isinstance(value, bool):
            return True
        if t == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t == "integer" and isinstance(value, float) and value.is_integer():
            return True
        if t == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
    return False


class _Decoder:
    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.unknown: list[str] = []

    def fail(self, value: Any, path: str, want: str) -> apierrors.ApiError:
        kind, version = self.resource.kind, self.resource.version
        return apierrors.bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot unmarshal '
            f"{_json_type(value)} into Go struct field {kind}.{path} of type {_GO_TYPES.get(want, want)}")

    def value(self, value: Any, schema: Schema, path: str) -> Any:
        schema = resolve(schema)
        if "oneOf" in schema:  # IntOrString, Quantity
            options = [resolve(o).get("type") for o in schema["oneOf"]]
            if not any(_accepts(t, value) for t in options if t):
                raise self.fail(value, path, "string")
            return value
        want = schema.get("type")
        if want and not _accepts(want, value):
            raise self.fail(value, path, want if isinstance(want, str) else want[0])
        if isinstance(value, float) and want == "integer":
            return int(value)
        if isinstance(value, dict):
            return self.mapping(value, schema, path)
        if isinstance(value, list):
            item = resolve(schema.get("items"))
            return [self.value(v, item, f"{path}[{i}]") for i, v in enumerate(value) if v is not None]
        return value

    def mapping(self, value: dict, schema: Schema, path: str) -> dict:
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for key, sub in value.items():
            where = f"{path}.{key}" if path else key
            if sub is None:
                continue  # null is "not set", as Go decodes it
            if props is not None and key in props:
                out[key] = self.value(sub, props[key], where)
            elif isinstance(extra, dict):
                out[key] = self.value(sub, extra, where)
            elif props is not None and extra is False and not schema.get("x-kubernetes-preserve-unknown-fields"):
                self.unknown.append(where)
            else:
                out[key] = sub
        for key in schema.get("required") or ():
            if key not in out and props and key in props:
                zero = _ZERO.get(resolve(props[key]).get("type"))
                if zero is not None:
                    out[key] = zero  # Go writes a field without omitempty even when it is zero
        return out


def decode(resource: Resource, obj: Any) -> tuple[dict, list[str]]:
    """(the object as the API server would store it, the unknown fields it dropped); 400 on a wrong type."""
    if not isinstance(obj, dict):
        raise apierrors.bad_request(f"json: cannot unmarshal {_json_type(obj)} into Go value of type "
                                    f"struct {{ APIVersion string; Kind string }}")
    decoder = _Decoder(resource)
    decoded = decoder.value(obj, for_resource(resource), "")
    return decoded, decoder.unknown
