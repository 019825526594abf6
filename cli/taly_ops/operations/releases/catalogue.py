"""The release catalogue of an environment: releases/catalogue/<id>.json in its backups bucket.

Each record is written once, with `If-None-Match: *`: an id is never overwritten, whoever tries. A record
read back is checked whole (its shape, its content digest, its id against both and against its key), so a
damaged or edited record is named, never used.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ...errors import BadInput, TalyError, VERDICT
from .record import Release, check_id
from .stored import PREFIX, Damaged, dump, parse

CATALOGUE = PREFIX + "catalogue/"
_KEY = re.compile(r"^" + re.escape(CATALOGUE) + r"(?P<id>rel-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8})\.json$")
READERS = 8  # records read at once when listing


class ReleaseExists(TalyError):
    """Another record already holds this id: ids are never reused (exit 1)."""

    exit_code = VERDICT


@dataclass(frozen=True)
class DamagedObject:
    key: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "reason": self.reason}


@dataclass
class Catalogue:
    store: Any  # adapters.s3_store.Store
    environment: str

    def key(self, release_id: str) -> str:
        return f"{CATALOGUE}{release_id}.json"

    def location(self, release_id: str) -> str:
        return f"s3://{self.store.bucket}/{self.key(release_id)}"

    def put(self, release: Release) -> bool:
        """Write the record once: True when written; False when this very record is there already (same id
        and content); ReleaseExists when the id holds another record."""
        if self.store.put_new(self.key(release.id), dump(release)) is not None:
            return True
        there = self.get(release.id)
        if there.content_digest == release.content_digest:
            return False
        raise ReleaseExists(f"{self.location(release.id)} already holds a release with other content "
                            f"({there.content_digest}); a release id is never overwritten")

    def get(self, release_id: str) -> Release:
        """The record; BadInput when the catalogue has no such release, Damaged when it cannot be trusted."""
        check_id(release_id)
        key = self.key(release_id)
        try:
            blob = self.store.get(key)
        except KeyError:
            raise BadInput(f"no release {release_id} in the {self.environment} catalogue "
                           f"(s3://{self.store.bucket}/{CATALOGUE})",
                           hint=f"`taly release list --env {self.environment}` shows its releases") from None
        release = parse(Release, blob.body, self.location(release_id))
        if release.id != release_id:
            raise Damaged(self.location(release_id), f"it holds release {release.id}, not {release_id}")
        return release

    def ids(self) -> tuple[list[str], list[DamagedObject]]:
        """Release ids, oldest first; and objects under the prefix that are not records."""
        ids, strays = [], []
        for obj in self.store.keys(CATALOGUE):
            if m := _KEY.match(obj["Key"]):
                ids.append(m["id"])
            else:
                strays.append(DamagedObject(obj["Key"], "not a release record's name (releases/catalogue/<id>.json)"))
        return sorted(ids), strays

    def read(self, ids: list[str]) -> tuple[list[Release], list[DamagedObject]]:
        """The records of ids (read a few at a time), and the ones that could not be trusted."""
        def one(release_id: str) -> Release | DamagedObject:
            try:
                return self.get(release_id)
            except Damaged as exc:
                return DamagedObject(self.key(release_id), exc.reason)
            except BadInput:  # listed a moment ago, gone now
                return DamagedObject(self.key(release_id), "listed, then gone")

        with ThreadPoolExecutor(max_workers=READERS) as pool:
            results = list(pool.map(one, ids))
        return ([r for r in results if isinstance(r, Release)], [r for r in results if isinstance(r, DamagedObject)])
