"""What a release is made of, read from files: the images file, the chart's version, the configuration
revision and the database migrations. Each is untrusted input: a problem is one BadInput line naming the
file (and the line of the service it is about)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from pydantic import ValidationError

from ...errors import BadInput
from .record import IMAGE_FORM, MIGRATION_ID, Chart, Database, Migration, image_problem
from .stored import first_problem

CHART_DIR = Path("charts") / "taly-service"
MIGRATIONS_DIR = Path("migrations")
MIGRATION_FILE = "migration.sql"
# Documentation in the chart directory does not change what is deployed.
NOT_CONFIGURATION = re.compile(r"^README(\.[A-Za-z]+)?$")


def read_images(path: Path, services: tuple[str, ...], *, partial: bool = False) -> dict[str, str]:
    """The images file: a YAML or JSON mapping of service -> digest-pinned reference, for every service of the
    catalog (partial: for some of them, laid over a base release)."""
    from taly_platform import safe_yaml

    shown = str(path)
    try:
        data, node = safe_yaml.parse(safe_yaml.read_text(path, shown), shown)
    except safe_yaml.YamlError as exc:
        raise BadInput(f"images file {exc}") from None
    if not isinstance(data, dict) or not data:
        raise BadInput(f"images file {shown}: expected a mapping of service -> image ({IMAGE_FORM})",
                       hint="e.g. `auth: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/taly/auth:1.4.2@sha256:<64 hex>`")
    lines = {k.value: k.start_mark.line + 1 for k, _ in getattr(node, "value", []) if hasattr(k, "value")}
    for service, reference in data.items():
        where = f"images file {shown}:{lines.get(service, '?')}"
        if service not in services:
            raise BadInput(f"{where}: {service!r} is not a service of the catalog ({', '.join(services)})")
        if problem := image_problem(service, reference):
            raise BadInput(f"{where}: {service}: {problem}")
    missing = [s for s in services if s not in data]
    if missing and not partial:
        raise BadInput(f"images file {shown}: no image for {', '.join(missing)}",
                       hint="a release names every service's image; to change some of them only, add "
                            "--from-env ENV (the others stay as that environment runs them)")
    return dict(data)


def read_chart(root: Path) -> Chart:
    from taly_platform import safe_yaml

    path = root / CHART_DIR / "Chart.yaml"
    try:
        data = safe_yaml.load_file(path)
    except safe_yaml.YamlError as exc:
        raise BadInput(f"the chart: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data.get("version"):
        raise BadInput(f"{path}: a chart names itself and its version (name:, version:)")
    try:
        return Chart(name=data["name"], version=str(data["version"]))
    except ValidationError as exc:
        raise BadInput(f"{path}: {first_problem(exc)}") from None


def config_revision(root: Path) -> str:
    """sha256 over every file of the chart directory but its README (path and content): templates, defaults,
    the values schema and each service's values, which every environment gets alike. Environment values
    (stacks/Pulumi.<env>.yaml) belong to `pulumi up`, not to a release."""
    chart = root / CHART_DIR
    if not chart.is_dir():
        raise BadInput(f"no chart at {chart}", hint="run taly from the repository, or set TALY_PROJECT_ROOT")
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file() and not NOT_CONFIGURATION.match(p.name)):
        digest.update(path.relative_to(chart).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def read_migrations(directory: Path) -> Database:
    """Prisma's layout: one directory per migration, <id>/migration.sql, applied in the order of the ids.
    Files beside them (migration_lock.toml, a README) are not migrations."""
    if not directory.is_dir():
        raise BadInput(f"no migrations directory at {directory}",
                       hint="give the CMS's migrations with --migrations DIR (Prisma's prisma/migrations)")
    migrations = []
    for entry in sorted(p for p in directory.iterdir() if p.is_dir()):
        if not re.match(MIGRATION_ID, entry.name):
            raise BadInput(f"{entry}: not a migration directory name (<number>_<name>, as Prisma names them)")
        sql = entry / MIGRATION_FILE
        if not sql.is_file():
            raise BadInput(f"{entry}: holds no {MIGRATION_FILE}")
        migrations.append(Migration(id=entry.name, checksum=hashlib.sha256(sql.read_bytes()).hexdigest()))
    return Database(schema_version=migrations[-1].id if migrations else None, migrations=migrations)
