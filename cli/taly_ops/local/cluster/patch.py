"""The three PATCH formats the API server accepts, applied to a stored object.

- JSON Patch (RFC 6902, `application/json-patch+json`): the jsonpatch library; a patch that does not
  apply is the API server's 422.
- JSON merge patch (RFC 7386, `application/merge-patch+json`).
- Strategic merge patch (`application/strategic-merge-patch+json`), as k8s.io/apimachinery's
  strategicpatch: lists merged by the patch merge key upstream's types declare (containers, env,
  ports, volumes, volumeMounts, imagePullSecrets... from schema.json), primitive lists with the merge
  strategy unioned, other lists replaced; and the directives kubectl apply sends: `$patch`
  (replace/delete/merge, in maps and list elements), `$retainKeys`, `$setElementOrder/<list>`,
  `$deleteFromPrimitiveList/<list>`.
"""

from __future__ import annotations

from typing import Any

import jsonpatch

from . import apierrors
from .schema import Schema, field, items, resolve

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC)
ACCEPTED = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC]  # as the API server lists them in its 415

_SET_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_REJECTED = "the server rejected our request due to an error in our request"


def apply(content_type: str, original: dict, patch: Any, schema: Schema) -> Any:
    """`original` patched (a new object; `original` is left as it was)."""
    if content_type == JSON_PATCH:
        return json_patch(original, patch)
    if content_type == MERGE_PATCH:
        return merge_patch(original, patch)
    if content_type == STRATEGIC:
        return strategic(original, patch, schema)
    raise apierrors.unsupported_media_type(content_type, ACCEPTED)


def json_patch(original: dict, patch: Any) -> Any:
    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise apierrors.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        return jsonpatch.JsonPatch(patch).apply(original, in_place=False)
    except jsonpatch.InvalidJsonPatch as exc:
        raise apierrors.bad_request(str(exc)) from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError, TypeError):
        raise apierrors.ApiError(422, "Invalid", _REJECTED) from None


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic(original: dict, patch: Any, schema: Schema) -> dict:
    if not isinstance(patch, dict):
        raise apierrors.bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
    merged = _map(original, patch, schema)
    if merged is None:
        raise apierrors.bad_request("unable to delete the whole object with a $patch: delete directive")
    return merged


def _bad(message: str) -> apierrors.ApiError:
    return apierrors.bad_request(message)


def _map(original: Any, patch: dict, schema: Schema) -> dict | None:
    """A map patched; None when the patch says `$patch: delete`."""
    original = dict(original) if isinstance(original, dict) else {}
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "delete":
        return None
    if directive == "replace":
        return _clean(patch, schema)
    if directive not in (None, "merge"):
        raise _bad(f"Unknown patch type: {directive}, the patch only supports replace, delete and merge")
    retain = patch.pop("$retainKeys", None)
    if retain is not None:
        if not isinstance(retain, list):
            raise _bad("invalid patch format for retainKeys: retainKeys must be a list")
        original = {k: v for k, v in original.items() if k in retain}
    orders = {k[len(_SET_ORDER):]: patch.pop(k) for k in [k for k in patch if k.startswith(_SET_ORDER)]}
    for key in [k for k in patch if k.startswith(_DELETE_FROM)]:
        name, drop = key[len(_DELETE_FROM):], patch.pop(key)
        if not isinstance(drop, list):
            raise _bad("invalid patch format for primitive list: $deleteFromPrimitiveList must be a list")
        if isinstance(original.get(name), list):
            original[name] = [v for v in original[name] if v not in drop]
    for key, value in patch.items():
        sub = field(schema, key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and "replace" in sub.get("x-kubernetes-patch-strategy", "").split(","):
            original[key] = _clean(value, sub)  # a map whose strategy is replace (a PDB's selector)
        elif isinstance(value, dict) and not (sub.get("type") in ("string", "integer") or "oneOf" in sub):
            merged = _map(original.get(key), value, sub)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _list(original.get(key), value, sub)
        else:
            original[key] = value
    for name, order in orders.items():
        if isinstance(original.get(name), list):
            original[name] = _ordered(original[name], order, field(schema, name))
    return original


def _clean(value: Any, schema: Schema) -> Any:
    """A value from the patch with its directives applied to nothing (a replace, or a new key)."""
    if isinstance(value, dict):
        return _map({}, value, schema) or {}
    if isinstance(value, list):
        return _list([], value, schema)
    return value


def _strategy(schema: Schema) -> tuple[bool, str | None]:
    strategy = resolve(schema).get("x-kubernetes-patch-strategy", "")
    return "merge" in strategy.split(","), resolve(schema).get("x-kubernetes-patch-merge-key")


def _list(original: Any, patch: list, schema: Schema) -> list:
    merge, key = _strategy(schema)
    item = items(schema)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_clean(p, item) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    original = list(original) if isinstance(original, list) else []
    if not merge:
        if any(isinstance(p, dict) and "$patch" in p for p in patch):
            raise _bad("unable to find api field in struct for the list's $patch directive: the list has no merge key")
        return [_clean(p, item) for p in patch]
    if not key:  # a set of primitives: union, in order
        merged = list(original)
        for value in patch:
            if isinstance(value, (dict, list)):
                raise _bad("invalid patch format for primitive list: element is not a primitive")
            if value not in merged:
                merged.append(value)
        return merged
    for element in patch:
        if not isinstance(element, dict) or key not in element:
            raise apierrors.ApiError(422, "Invalid", f"map: {element} does not contain declared merge key: {key}")
        at = next((i for i, o in enumerate(original) if isinstance(o, dict) and o.get(key) == element[key]), None)
        if element.get("$patch") == "delete":
            original = [o for o in original if not (isinstance(o, dict) and o.get(key) == element[key])]
        elif at is None:
            original.append(_clean(element, item))
        else:
            original[at] = _map(original[at], element, item) or {}
    return original


def _ordered(merged: list, order: list, schema: Schema) -> list:
    """$setElementOrder: the listed elements in the listed order, others kept where they were."""
    _, key = _strategy(schema)

    def ident(value: Any) -> Any:
        return value.get(key) if key and isinstance(value, dict) else value

    wanted = [ident(o) for o in order]
    position = {v: i for i, v in enumerate(wanted) if isinstance(v, (str, int, float, bool))}
    listed = sorted((m for m in merged if _hashable(ident(m)) in position), key=lambda m: position[ident(m)])
    others = [(i, m) for i, m in enumerate(merged) if _hashable(ident(m)) not in position]
    if not others:
        return listed
    index = {id(m): i for i, m in enumerate(merged)}
    result: list = []
    for m in listed:
        while others and others[0][0] < index[id(m)]:
            result.append(others.pop(0)[1])
        result.append(m)
    return result + [m for _, m in others]


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)
