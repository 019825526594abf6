"""The release record: one immutable description of what an environment runs.

A release names, for each service, the image pinned by digest
(`<registry>/taly/<service>:<tag>@sha256:<64 hex>`), the chart's version, the configuration revision
(a digest of the chart directory: templates, defaults and per-service values, everything the release
carries to every environment alike) and the database: the schema version it needs and the migrations,
in order, that bring a database to it.

Its id sorts by creation time and ends in the first 8 hex digits of its content digest
(`rel-20260301T120000Z-1a2b3c4d`); the digest (sha256 over the canonical JSON of images, chart,
configuration revision and database) is stored with it and checked whenever a record is read back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...errors import BadInput
from .stored import canonical

ID_PATTERN = r"^rel-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"
MIGRATION_ID = r"^[0-9]+_[A-Za-z0-9_]+$"  # Prisma's directory names: <timestamp>_<name>, and 0_init for a baseline
DIGEST = r"^sha256:[0-9a-f]{64}$"
_IMAGE = re.compile(r"^(?P<registry>[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9._-]+)*)/taly/"
                    r"(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
                    r"@sha256:(?P<digest>[0-9a-f]{64})$")
IMAGE_FORM = "<registry>/taly/<service>:<tag>@sha256:<64 hex>"


def image_problem(service: str, reference: Any) -> str | None:
    """Why reference is not service's image pinned by digest, or None when it is."""
    if not isinstance(reference, str):
        return f"expected an image reference ({IMAGE_FORM}), got {type(reference).__name__}"
    if "@" not in reference:
        return (f"image {reference!r} is not pinned by digest: a tag can be moved, a digest cannot "
                f"(append @sha256:<64 hex>, as the registry reports it)")
    if not re.search(r"@sha256:[0-9a-f]{64}$", reference):
        return f"image {reference!r}: the digest must be @sha256: and 64 lower-case hex digits"
    m = _IMAGE.match(reference)
    if not m:
        return f"image {reference!r} is not of the form {IMAGE_FORM}"
    if m["service"] != service:
        return f"image {reference!r} is the image of {m['service']!r}, not of {service!r}"
    return None


def release_id(created_at: dt.datetime, digest: str) -> str:
    return f"rel-{created_at.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{digest.removeprefix('sha256:')[:8]}"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chart(_Record):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    version: str = Field(min_length=1, max_length=64)


class Migration(_Record):
    id: str = Field(pattern=MIGRATION_ID, max_length=200)
    checksum: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of migration.sql, as Prisma records it")


class Database(_Record):
    """The schema version a release needs (its last migration's id; None: it needs no migration) and the
    migrations, in the order they run, that bring a database to it."""

    schema_version: str | None
    migrations: list[Migration]

    @model_validator(mode="after")
    def _ordered(self) -> "Database":
        ids = [m.id for m in self.migrations]
        if ids != sorted(set(ids)):
            raise ValueError("migrations must be in order (by id) and each id once")
        if self.schema_version != (ids[-1] if ids else None):
            raise ValueError(f"schema_version must be the last migration's id ({ids[-1] if ids else None})")
        return self


def content_digest(images: dict[str, str], chart: Chart, config_revision: str, database: Database) -> str:
    content = {"images": images, "chart": chart.model_dump(), "config_revision": config_revision,
               "database": database.model_dump()}
    return "sha256:" + hashlib.sha256(canonical(content)).hexdigest()


class Release(_Record):
    id: str = Field(pattern=ID_PATTERN)
    created_at: dt.datetime
    created_by: str = Field(min_length=1, max_length=200)
    based_on: str | None = Field(None, pattern=ID_PATTERN, description="the release whose images it started from")
    images: dict[str, str] = Field(min_length=1)
    chart: Chart
    config_revision: str = Field(pattern=DIGEST)
    database: Database
    content_digest: str = Field(pattern=DIGEST)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return v.astimezone(dt.timezone.utc)

    @field_validator("images")
    @classmethod
    def _pinned(cls, v: dict[str, str]) -> dict[str, str]:
        for service, reference in v.items():
            if problem := image_problem(service, reference):
                raise ValueError(f"{service}: {problem}")
        return dict(sorted(v.items()))

    @model_validator(mode="after")
    def _consistent(self) -> "Release":
        digest = content_digest(self.images, self.chart, self.config_revision, self.database)
        if digest != self.content_digest:
            raise ValueError(f"its content does not match its content_digest (it hashes to {digest})")
        if self.id != release_id(self.created_at, digest):
            raise ValueError(f"its id does not match its creation time and content ({release_id(self.created_at, digest)})")
        return self

    @classmethod
    def make(cls, images: dict[str, str], chart: Chart, config_revision: str, database: Database, *,
             created_at: dt.datetime, created_by: str, based_on: str | None = None) -> "Release":
        """A new record, its digest and id computed (images validated: BadInput naming the service)."""
        for service, reference in sorted(images.items()):
            if problem := image_problem(service, reference):
                raise BadInput(f"{service}: {problem}")
        images = dict(sorted(images.items()))
        digest = content_digest(images, chart, config_revision, database)
        at = created_at.astimezone(dt.timezone.utc)
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # milliseconds: list order within a second
        return cls(id=release_id(at, digest), created_at=at, created_by=created_by, based_on=based_on,
                   images=images, chart=chart, config_revision=config_revision, database=database,
                   content_digest=digest)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def check_id(value: str) -> str:
    """A release id as typed by a person: BadInput (exit 2) unless it has the form ids have."""
    if not re.match(ID_PATTERN, value or ""):
        raise BadInput(f"{value!r} is not a release id (rel-<yyyymmdd>T<hhmmss>Z-<8 hex>)",
                       hint="`taly release list --env ENV` shows the ids")
    return value
