"""ControllerRef claiming (controller.ClaimReplicaSets / ClaimPods): which objects a controller owns.

An object controlled by the owner and still matching its selector is kept; one it controls that no
longer matches is released (its ownerReference removed); an orphan that matches is adopted (an
ownerReference with controller: true added) unless either side is being deleted; an object
controlled by someone else is never touched.
"""

from __future__ import annotations

from typing import Any

from ..apierrors import ApiError
from .objects import Obj, controller_of, is_deleting, new_controller_ref, selector_matches


def claim(store: Any, plural: str, owner: Obj, owner_plural: str, candidates: list[Obj],
          owner_kind: tuple[str, str]) -> list[Obj]:
    """The candidates the owner controls after adopting and releasing; owner_kind is (kind, apiVersion)."""
    uid = owner["metadata"]["uid"]
    selector = (owner.get("spec") or {}).get("selector")
    owned: list[Obj] = []
    can_adopt: bool | None = None
    for obj in candidates:
        ref = controller_of(obj)
        labels = obj["metadata"].get("labels") or {}
        matches = selector_matches(selector, labels)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                owned.append(obj)
            elif not is_deleting(owner):
                _release(store, plural, obj, uid)
            continue
        if not matches or is_deleting(owner) or is_deleting(obj):
            continue
        if can_adopt is None:
            can_adopt = _still_there(store, owner_plural, owner)
        if can_adopt:
            adopted = _adopt(store, plural, obj, new_controller_ref(owner, *owner_kind))
            if adopted is not None:
                owned.append(adopted)
    return owned


def _still_there(store: Any, plural: str, owner: Obj) -> bool:
    """RecheckDeletionTimestamp: adopt only for the very owner, fresh from the store, not being deleted."""
    m = owner["metadata"]
    try:
        fresh = store.get(plural, m.get("namespace"), m["name"])
    except ApiError:  # gone: adopt nothing
        return False
    return fresh["metadata"].get("uid") == m["uid"] and not is_deleting(fresh)


def _adopt(store: Any, plural: str, obj: Obj, ref: Obj) -> Obj | None:
    def fn(o: Obj) -> None:
        if controller_of(o) is not None:
            raise _Taken()
        o["metadata"].setdefault("ownerReferences", []).append(ref)
    try:
        return store.mutate(plural, obj["metadata"].get("namespace"), obj["metadata"]["name"], fn)
    except (ApiError, _Taken):  # gone or taken meanwhile: not ours
        return None


def _release(store: Any, plural: str, obj: Obj, uid: str) -> None:
    def fn(o: Obj) -> None:
        o["metadata"]["ownerReferences"] = [r for r in o["metadata"].get("ownerReferences") or []
                                            if r.get("uid") != uid]
    try:
        store.mutate(plural, obj["metadata"].get("namespace"), obj["metadata"]["name"], fn)
    except ApiError:  # gone meanwhile
        pass


class _Taken(Exception):
    """Another controller adopted the object between the list and the write."""
