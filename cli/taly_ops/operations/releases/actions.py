"""What `taly release` runs: create a release into an environment's catalogue, list and show its releases,
read its ledger. Each returns a typed result; nothing here prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import audit
from ...environment import Environment, check_name, resolve
from ...errors import BadInput, TalyError
from .catalogue import CATALOGUE, Catalogue, DamagedObject
from .ledger import History, Ledger
from .lock import EnvironmentLock, LockStatus
from .record import Release, check_id
from .sources import MIGRATIONS_DIR, config_revision, read_chart, read_images, read_migrations
from .stored import Clock, Damaged, utc_now, who


@dataclass(frozen=True)
class CreateRequest:
    env: str | None             # the catalogue it goes into (default: from_env's)
    images: Path | None         # service -> digest-pinned reference
    from_env: str | None        # start from what this environment runs now
    migrations: Path | None     # default: <project>/migrations
    dry_run: bool = False
    state_dir: Path | None = None


@dataclass(frozen=True)
class Created:
    release: Release
    environment: str
    location: str
    created: bool   # False: a dry run, or this very record was in the catalogue already
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.release.to_json(), "environment": self.environment, "location": self.location,
                "created": self.created, "dry_run": self.dry_run}


@dataclass(frozen=True)
class Listing:
    environment: str
    catalogue: str
    current: str | None
    releases: list[Release]
    damaged: list[DamagedObject]
    total: int

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "catalogue": self.catalogue, "current": self.current,
                "total": self.total, "releases": [r.to_json() for r in self.releases],
                "damaged": [d.to_json() for d in self.damaged]}


@dataclass(frozen=True)
class LedgerView:
    history: History
    lock: LockStatus | None

    @property
    def intact(self) -> bool:
        return not self.history.damaged

    def to_json(self) -> dict[str, Any]:
        return {**self.history.to_json(), "lock": self.lock.to_json() if self.lock else None}


def create(request: CreateRequest, clock: Clock = utc_now) -> Created:
    """Validate everything (BadInput before anything is written), then write the record once, audited."""
    from taly_platform.catalog import SERVICE_NAMES

    from ...project import project_root

    if request.images is None and request.from_env is None:
        raise BadInput("give --images FILE, --from-env ENV, or both (the file's images over what ENV runs)")
    name = request.env or request.from_env
    check_name(name)
    if request.from_env:
        check_name(request.from_env)
    overlay = read_images(request.images, SERVICE_NAMES, partial=bool(request.from_env)) if request.images else {}
    root = project_root()
    chart, revision = read_chart(root), config_revision(root)
    database = read_migrations(request.migrations or root / MIGRATIONS_DIR)
    env = resolve(name, request.state_dir)
    base = None
    if request.from_env:  # --state-dir is the catalogue environment's; another source resolves by default
        base = _running(env if request.from_env == name else resolve(request.from_env))
    images = {s: overlay.get(s) or (base.images.get(s) if base else None) for s in SERVICE_NAMES}
    if missing := [s for s, ref in images.items() if ref is None]:
        raise BadInput(f"{request.from_env} runs {base.id if base else 'no release'}, which names no image for "
                       f"{', '.join(missing)}", hint="give them in --images FILE")
    release = Release.make(images, chart, revision, database, created_at=clock(), created_by=who(),
                           based_on=base.id if base else None)
    catalogue = Catalogue(env.store, env.name)
    if request.dry_run:
        return Created(release, env.name, catalogue.location(release.id), False, True)
    inputs = {"images": request.images, "from_env": request.from_env, "migrations": request.migrations,
              "catalogue": f"s3://{env.store.bucket}/{CATALOGUE}"}
    try:
        created = catalogue.put(release)
    except TalyError as exc:
        audit.record(env.state_dir, "release.create", env.name, inputs=inputs, outcome="failed",
                     detail={"release": release.id, "error": exc.message})
        raise
    if not created:
        release = catalogue.get(release.id)  # the record as it was first written
    audit.record(env.state_dir, "release.create", env.name, inputs=inputs, outcome="created" if created else "exists",
                 after={"release": release.id, "location": catalogue.location(release.id),
                        "content_digest": release.content_digest})
    return Created(release, env.name, catalogue.location(release.id), created, False)


def _running(env: Environment) -> Release:
    """The release env runs now, as its ledger says."""
    current = Ledger(env.store, env.name).current().release
    if current is None:
        raise BadInput(f"{env.name} runs no recorded release: its ledger (s3://{env.store.bucket}/releases/) "
                       "has no successful promotion yet", hint="create the first release from an images file (--images)")
    return Catalogue(env.store, env.name).get(current)


def listing(env_name: str, state_dir: Path | None = None, limit: int | None = 20) -> Listing:
    """The catalogue's last `limit` releases (all: None), oldest first, and what the ledger says runs now."""
    env = resolve(env_name, state_dir)
    catalogue = Catalogue(env.store, env.name)
    ids, strays = catalogue.ids()
    releases, damaged = catalogue.read(ids[-limit:] if limit else ids)
    releases.sort(key=lambda r: (r.created_at, r.id))  # ids sort by the second; records know the millisecond
    try:
        current = Ledger(env.store, env.name).current().release
    except Damaged as exc:
        current = None
        damaged.append(DamagedObject(exc.key, exc.reason))
    return Listing(env.name, f"s3://{env.store.bucket}/{CATALOGUE}", current, releases, strays + damaged, len(ids))


def show(env_name: str, release_id: str, state_dir: Path | None = None) -> Release:
    check_id(release_id)
    env = resolve(env_name, state_dir)
    return Catalogue(env.store, env.name).get(release_id)


def history(env_name: str, state_dir: Path | None = None, limit: int | None = 50) -> LedgerView:
    """The ledger's last `limit` entries (all: None), what it says runs now, and who holds the lock."""
    env = resolve(env_name, state_dir)
    view = Ledger(env.store, env.name).history(limit)
    return LedgerView(view, EnvironmentLock(env.store, env.name, env.state_dir).status())
