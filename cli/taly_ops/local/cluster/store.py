"""The cluster's one in-memory object store: what etcd plus the API server's registry do upstream.

Every write gets the next resourceVersion (one counter for all kinds, as etcd's revision), lands in a
bounded history that watches replay from, and is told to listeners (controllers enqueue keys). The
rules clients see are upstream's: generation bumped on spec changes only, status kept by main-resource
writes of kinds with a status subresource, 409 on a stale resourceVersion, graceful pod deletion,
finalizers, and ownerReferences cascading (background) or orphaned on delete. Objects handed out are
copies; stored objects are never mutated in place (each write stores a new object).
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable

from . import apierrors, defaults, resources, schema, validation
from .resources import Resource
from .selectors import parse_field_selector, parse_label_selector
from .watches import Watch, clone

Obj = dict[str, Any]
Listener = Callable[[str, str, Obj], None]
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # upstream's utilrand alphabet (no vowels, no 0/1/3)


def timestamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Store:
    """Objects by plural, then (namespace, name); see CLUSTER.md for the contract other parts rely on."""

    def __init__(self, clock: Callable[[], float] = time.time, history: int = 20000) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {r.plural: {} for r in resources.RESOURCES}
        self._rv = 0
        self._history: deque[tuple[int, str, str, Obj, Obj | None]] = deque(maxlen=history)
        self._watches: list[Watch] = []
        self._listeners: list[Listener] = []
        self._local = threading.local()
        for name in SYSTEM_NAMESPACES:
            self.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # ---- reads ----

    def resource(self, plural: str) -> Resource:
        resource = resources.by_plural(plural)
        if resource is None:
            raise apierrors.route_not_found()
        return resource

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def get(self, plural: str, namespace: str | None, name: str) -> Obj:
        return clone(self._stored(self.resource(plural), namespace, name))

    def list(self, plural: str, namespace: str | None = None, label_selector: str = "",
             field_selector: str = "") -> tuple[list[Obj], str]:
        items, rv = self.list_shared(plural, namespace, label_selector, field_selector)
        return clone(items), rv

    def list_shared(self, plural: str, namespace: str | None = None, label_selector: str = "",
                    field_selector: str = "") -> tuple[list[Obj], str]:
        """list() without copies, sorted by namespace then name: for readers that only serialize."""
        resource = self.resource(plural)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(plural, field_selector)
        with self._lock:
            table = self._objects[plural]
            if resource.namespaced and namespace:
                keys = [k for k in table if k[0] == namespace]
            else:
                keys = list(table)
            rv = str(self._rv)
        keys.sort()
        items = [table[k] for k in keys if k in table]
        if not labels.empty() or not fields.empty():
            items = [o for o in items if labels.matches_object(o) and fields.matches_object(o)]
        return items, rv

    def _stored(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        ns = (namespace or "") if resource.namespaced else ""
        with self._lock:
            obj = self._objects[resource.plural].get((ns, name))
        if obj is None:
            raise apierrors.not_found(resource.plural, resource.group, name)
        return obj

    # ---- writes ----

    def create(self, plural: str, obj: Obj, dry_run: bool = False) -> Obj:
        resource = self.resource(plural)
        decoded, _ = schema.decode(resource, obj)
        new = {"apiVersion": resource.api_version, "kind": resource.kind, **decoded}
        new.update(apiVersion=resource.api_version, kind=resource.kind)
        meta = new.setdefault("metadata", {})
        if not resource.namespaced:
            meta.pop("namespace", None)
        with self._lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = self._generated_name(resource, meta)
            defaults.apply(resource, new)
            validation.validate(resource, new)
            key = _key(new)
            if key in self._objects[plural]:
                raise apierrors.already_exists(plural, resource.group, key[1])
            for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
                meta.pop(field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = timestamp(self._clock())
            if resource.generation:
                meta["generation"] = 1
            else:
                meta.pop("generation", None)
            defaults.prepare_create(resource, new)
            new, _ = schema.decode(resource, new)  # the reset status gets its zero-valued required fields
            stored = self._write(resource, "ADDED", new, None, dry_run=dry_run)
        self._notify()
        return clone(stored)

    def update(self, plural: str, obj: Obj, subresource: str | None = None, dry_run: bool = False) -> Obj:
        resource = self.resource(plural)
        obj, _ = schema.decode(resource, obj)
        meta = obj.get("metadata") or {}
        with self._lock:
            old = self._stored(resource, meta.get("namespace"), meta.get("name") or "")
            if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
                why = f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old['metadata']['uid']}"
                raise apierrors.conflict(plural, resource.group, old["metadata"]["name"], why)
            given = meta.get("resourceVersion")
            if given and given != old["metadata"]["resourceVersion"]:
                raise apierrors.conflict(plural, resource.group, old["metadata"]["name"], apierrors.STALE)
            stored = self._replace(resource, old, obj, subresource, dry_run)
        self._notify()
        return clone(stored)

    def mutate(self, plural: str, namespace: str | None, name: str, fn: Callable[[Obj], None],
               subresource: str | None = None, dry_run: bool = False) -> Obj:
        resource = self.resource(plural)
        with self._lock:
            old = self._stored(resource, namespace, name)
            new = clone(old)
            fn(new)
            stored = self._replace(resource, old, new, subresource, dry_run)
        self._notify()
        return clone(stored)

    def delete(self, plural: str, namespace: str | None, name: str, grace_seconds: int | None = None,
               propagation: str = "Background", uid: str | None = None) -> Obj:
        """Delete (see CLUSTER.md); propagation "Orphan" leaves dependents, minus their ownerReference."""
        resource = self.resource(plural)
        with self._lock:
            old = self._stored(resource, namespace, name)
            if uid and old["metadata"].get("uid") != uid:
                why = (f"Precondition failed: UID in precondition: {uid}, "
                       f"UID in object meta: {old['metadata'].get('uid')}")
                raise apierrors.conflict(plural, resource.group, name, why)
            stored = self._delete(resource, old, grace_seconds, propagation)
        self._notify()
        return clone(stored)

    def _delete(self, resource: Resource, old: Obj, grace_seconds: int | None, propagation: str) -> Obj:
        meta = old["metadata"]
        grace = self._grace(resource, old, grace_seconds)
        if meta.get("deletionTimestamp"):
            current = meta.get("deletionGracePeriodSeconds")
            if grace is None or current is None or grace >= current:
                return old  # already terminating, and no sooner than asked
        if grace or meta.get("finalizers"):
            new = clone(old)
            new["metadata"]["deletionTimestamp"] = timestamp(self._clock() + (grace or 0))
            new["metadata"]["deletionGracePeriodSeconds"] = grace or 0
            return self._write(resource, "MODIFIED", new, old)
        return self._remove(resource, old, propagation)

    def _grace(self, resource: Resource, obj: Obj, asked: int | None) -> int | None:
        """Seconds a deletion waits for (pods only: the kubelet stops the containers), None for none."""
        if resource.plural != "pods":
            return None
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if asked is not None:
            return max(0, int(asked))
        return int((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    def _remove(self, resource: Resource, obj: Obj, propagation: str) -> Obj:
        new = clone(obj)
        self._objects[resource.plural].pop(_key(new), None)
        gone = self._write(resource, "DELETED", new, obj, store=False)
        self._cascade(new, propagation)
        return gone

    def _cascade(self, owner: Obj, propagation: str) -> None:
        """Dependents (by ownerReference uid) are deleted with their owner, or orphaned."""
        uid = owner["metadata"]["uid"]
        if owner["kind"] == "Namespace":
            for plural, table in self._objects.items():
                for key in [k for k in table if k[0] == owner["metadata"]["name"]]:
                    if key in table:
                        self._remove(self.resource(plural), table[key], "Background")
            return
        for plural, table in self._objects.items():
            resource = self.resource(plural)
            for key, dependent in list(table.items()):
                refs = dependent["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if propagation == "Orphan" or len(refs) > 1:
                    new = clone(dependent)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid] or None
                    if new["metadata"]["ownerReferences"] is None:
                        del new["metadata"]["ownerReferences"]
                    self._write(resource, "MODIFIED", new, dependent)
                elif key in table:
                    self._delete(resource, table[key], None, "Background")

    def _replace(self, resource: Resource, old: Obj, new: Obj, subresource: str | None,
                 dry_run: bool = False) -> Obj:
        if subresource not in (None, "status"):
            raise apierrors.route_not_found()
        new, _ = schema.decode(resource, new)
        new.setdefault("metadata", {})
        if subresource == "status":
            status = new.get("status")
            annotations = new["metadata"].get("annotations")
            new = clone(old)
            if resource.group == "apps":
                # apps/v1's status strategies reset spec (and labels) only: the Deployment controller
                # sets its revision annotation in its status write, without a new generation.
                if annotations:
                    new["metadata"]["annotations"] = annotations
                else:
                    new["metadata"].pop("annotations", None)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            if resource.status:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
            meta, old_meta = new["metadata"], old["metadata"]
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "generation", "namespace", "name"):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or []):
                raise apierrors.invalid(resource.kind, resource.group, meta["name"], [(
                    "metadata.finalizers", "FieldValueForbidden",
                    "Forbidden: no new finalizers can be added if the object is being deleted")])
            new.update(apiVersion=resource.api_version, kind=resource.kind)
            if resource.generation and self._spec_changed(resource, old, new):
                meta["generation"] = int(old_meta.get("generation") or 1) + 1
            defaults.apply(resource, new)
            validation.validate(resource, new, old)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return old  # a no-op write: no new resourceVersion, no event (as upstream)
        meta = new["metadata"]
        if dry_run:
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not (
                resource.plural == "pods" and meta.get("deletionGracePeriodSeconds")):
            return self._remove(resource, new, "Background")
        return self._write(resource, "MODIFIED", new, old)

    @staticmethod
    def _spec_changed(resource: Resource, old: Obj, new: Obj) -> bool:
        if old.get("spec") != new.get("spec"):
            return True
        if resource.annotations_bump_generation:
            return old["metadata"].get("annotations") != new["metadata"].get("annotations")
        return False

    def _write(self, resource: Resource, kind: str, new: Obj, old: Obj | None, store: bool = True,
               dry_run: bool = False) -> Obj:
        """Give `new` the next resourceVersion, store it, record it for watches; under the lock."""
        if dry_run:  # everything checked, nothing kept: a dry-run create has no resourceVersion
            new["metadata"].pop("resourceVersion", None)
            return new
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        if store:
            self._objects[resource.plural][_key(new)] = new
        self._history.append((self._rv, kind, resource.plural, new, old))
        for watch in self._watches:
            watch._offer(self._rv, kind, resource.plural, new, old)
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        pending.append((kind, resource.plural, new))
        return new

    def _notify(self) -> None:
        """Tell listeners of this thread's writes, outside the lock."""
        pending = getattr(self._local, "pending", None)
        if not pending:
            return
        self._local.pending = []
        for kind, plural, obj in pending:
            for listener in list(self._listeners):
                listener(kind, plural, clone(obj))

    def _generated_name(self, resource: Resource, meta: Obj) -> str:
        table = self._objects[resource.plural]
        for _ in range(16):
            name = meta["generateName"] + "".join(random.choice(_SUFFIX) for _ in range(5))
            if (meta.get("namespace") or "" if resource.namespaced else "", name) not in table:
                return name
        raise apierrors.already_exists(resource.plural, resource.group, meta["generateName"])

    # ---- watches and listeners ----

    def watch(self, plural: str, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str = "", field_selector: str = "") -> Watch:
        resource = self.resource(plural)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(plural, field_selector)
        namespace = namespace if resource.namespaced else None
        with self._lock:
            if resource_version in (None, "", "0"):
                watch = Watch(self._forget, plural, namespace, labels, fields, self._rv)
                items, _ = self.list_shared(plural, namespace, label_selector, field_selector)
                watch._initial(items)
            else:
                since = self._parse_rv(resource_version)
                oldest = self._history[0][0] if self._history else self._rv + 1
                if since < oldest - 1 and since < self._rv:
                    raise apierrors.expired(f"too old resource version: {since} ({oldest - 1})")
                watch = Watch(self._forget, plural, namespace, labels, fields, since)
                for rv, kind, p, obj, old in self._history:
                    if rv > since:
                        watch._offer(rv, kind, p, obj, old)
                watch.resource_version = str(max(since, self._rv))
            self._watches.append(watch)
        return watch

    @staticmethod
    def _parse_rv(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            value = -1
        if value < 0:
            raise apierrors.bad_request(f'resourceVersion: Invalid value: "{text}": must be a non-negative integer')
        return value

    def _forget(self, watch: Watch) -> None:
        with self._lock:
            if watch in self._watches:
                self._watches.remove(watch)

    def watch_count(self) -> int:
        with self._lock:
            return len(self._watches)

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)
