"""The garbage collector's other half: dependents created after their owner was deleted.

The store cascades a deletion to the objects that exist then; a ReplicaSet that creates a pod while
its Deployment is being deleted (or a pod created for a ReplicaSet just deleted) would be orphaned
for good. As upstream's collector, a new object whose owners are all gone is deleted, and an owner
reference to a missing owner is removed when others remain.
"""

from __future__ import annotations

from typing import Any

from ..apierrors import ApiError
from ..resources import by_kind
from .objects import Obj

SEP = "|"


def gc_key(plural: str, obj: Obj) -> str | None:
    """The collector's key for a new object with owners (plural|namespace|name), None without owners."""
    m = obj.get("metadata") or {}
    if not m.get("ownerReferences"):
        return None
    return SEP.join((plural, m.get("namespace") or "", m.get("name", "")))


class GarbageCollector:
    def __init__(self, store: Any) -> None:
        self.store = store

    def sync(self, key: str) -> None:
        plural, namespace, name = key.split(SEP, 2)
        try:
            obj = self.store.get(plural, namespace or None, name)
        except ApiError as e:
            if e.code == 404:
                return
            raise
        refs = obj["metadata"].get("ownerReferences") or []
        dangling = [r for r in refs if not self._owner_exists(namespace or None, r)]
        if not dangling:
            return
        try:
            if len(dangling) == len(refs):
                self.store.delete(plural, namespace or None, name)
            else:
                gone = {r.get("uid") for r in dangling}
                self.store.mutate(plural, namespace or None, name, lambda o: o["metadata"].__setitem__(
                    "ownerReferences", [r for r in o["metadata"].get("ownerReferences") or []
                                        if r.get("uid") not in gone]))
        except ApiError as e:
            if e.code != 404:
                raise

    def _owner_exists(self, namespace: str | None, ref: Obj) -> bool:
        resource = by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource is None:
            return True  # a kind this cluster does not serve: nothing to say about it
        try:
            owner = self.store.get(resource.plural, namespace if resource.namespaced else None, ref.get("name", ""))
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        return owner["metadata"].get("uid") == ref.get("uid")
