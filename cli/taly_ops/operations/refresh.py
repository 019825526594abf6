"""`taly data refresh`: a source environment's backup, anonymised (and subset), into a target environment.

    1. refuse what must never happen: --to prod, --from X --to X, --from prod without --anonymize, a
       target whose primary is an endpoint of the source;
    2. resolve the source's logical backup (--backup ID or the latest), check its schema (toc.dat,
       sha256-checked) against the rules file and the subset plan: any misfit is exit 2 here, before
       anything starts;
    3. download every file and check its sha256; restore into a LOCAL scratch PostgreSQL (registered
       in the target's drills registry before it starts, always torn down; `taly drill reap` finds
       what a killed refresh left), so personal data never reaches the target server;
    4. in the scratch copy: the subset, then the anonymisation, then foreign keys, the drill spec's
       invariants and the PII scan; anything wrong stops here (exit 1) and the target is untouched;
    5. pg_dump the scratch copy into a NEW database <db>_refresh_<id> on the target's primary, scan it
       again; only if clean: terminate the target database's sessions, rename it <db>_before_refresh
       (dropping an older one) and the new one <db>. On any failure the new database is dropped.

Audit entries (before and after) go to the target's state directory. Reports carry names, counts
and row keys, never a value read from the data; PostgreSQL errors from the scratch copy are reduced
to their primary message, and pg_restore's output about the source backup is withheld (it can quote
rows).
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VERDICT, BadInput, TalyError
from ..environment import Environment, addresses, check_name, contract_addresses, resolve
from .steps import iso, now
from .refresh_run import BEFORE_SUFFIX, MAINTENANCE_DB
from .reports import RefreshReport
from .steps import Clock, Progress, Steps, quiet



class RefreshFailed(TalyError):
    """A negative verdict before anything started (the backup's schema file does not match its manifest)."""
    exit_code = VERDICT



def refuse(from_env: str, to_env: str, anonymize: bool) -> None:
    """The refusals that need nothing but the arguments (exit 2)."""
    for flag, env in (("--from", from_env), ("--to", to_env)):
        check_name(env, flag)
    if to_env == "prod":
        raise BadInput("refusing to refresh into prod: a refresh replaces the target's database, and prod's data "
                       "is never replaced by a copy", hint="refresh dev or staging; restore prod with the backup runbooks")
    if from_env == to_env:
        raise BadInput(f"--from and --to are both {from_env}: a refresh copies one environment into another")
    if from_env == "prod" and not anonymize:
        raise BadInput("a refresh from prod must anonymise: add --anonymize (the rules are runbooks/data/anonymize.yaml)",
                       hint="personal data from prod never reaches another environment")


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _db_name(db: str, refresh_id: str) -> str:
    """<db>_refresh_<timestamp>_<hex>, within PostgreSQL's 63 bytes."""
    suffix = "_refresh_" + refresh_id.removeprefix("refresh-").replace("-", "_").lower()
    return db[: 63 - len(suffix)] + suffix


@dataclass(frozen=True)
class RefreshRequest:
    """What `taly data refresh` was asked: from where to where, anonymised or not, how much, which backup."""

    from_env: str
    to_env: str
    anonymize: bool
    subset: float | None = None
    rules_path: Path | None = None
    backup: str = "latest"
    dry_run: bool = False


def refresh(request: RefreshRequest, *, state_dir: Path | None = None, progress: Progress = quiet,
            clock: Clock | None = None) -> RefreshReport:
    """Run (or with dry_run, plan) one refresh; returns its report (status ok | failed | dry-run).

    BadInput (2) and Unreachable (3) are raised before anything changes, or after the cleanup and the
    audit entry when they happen later; errors.Interrupted (SIGTERM/SIGINT) likewise.
    """
    from_env, to_env, anonymize, subset = request.from_env, request.to_env, request.anonymize, request.subset
    rules_path, backup, dry_run = request.rules_path, request.backup, request.dry_run
    from ..datarefresh import rules as rules_mod
    from ..project import project_root
    from . import backup as backup_ops
    from . import drills

    steps = Steps(progress, clock=clock or time.monotonic)
    started = now()
    refuse(from_env, to_env, anonymize)
    root = project_root()
    path = rules_path or root / rules_mod.DEFAULT_RULES
    shown = _shown(path, root)
    rules = rules_mod.load(path, shown)
    percent = rules_mod.subset_percent(rules, to_env, subset)
    spec_path = root / drills.SPEC
    spec = drills.load_spec(spec_path)

    src = resolve(from_env, state_dir if from_env == "local" else None)
    dst = resolve(to_env, state_dir if to_env == "local" else None)
    if dst.primary is None:
        raise BadInput(f"{to_env} has no primary database endpoint to refresh")
    target_addrs = addresses(dst.primary.host, dst.primary.port)
    if target_addrs & src.source_addresses():
        raise BadInput(f"the target's primary {dst.primary.address} is an endpoint of {from_env}; refusing to "
                       "refresh a database over its own source")
    prod_addrs = contract_addresses("prod") or set()
    if from_env != "prod" and not anonymize and src.source_addresses() & prod_addrs:
        raise BadInput(f"{from_env}'s database is prod's (its endpoints are in contracts/prod.json): a refresh from "
                       "prod's data must anonymise: add --anonymize",
                       hint="personal data from prod never reaches another environment")
    if target_addrs & prod_addrs:
        raise BadInput(f"the target's primary {dst.primary.address} is an endpoint of prod (contracts/prod.json); "
                       f"refusing: contracts/{to_env}.json may be a copy of prod's",
                       hint=f"rewrite it with `pulumi stack output --stack {to_env} --json > contracts/{to_env}.json`")
    if len((dst.primary.database + BEFORE_SUFFIX).encode()) > 63:
        raise BadInput(f"the target database's name {dst.primary.database!r} is too long to keep the previous copy as "
                       f"{dst.primary.database}{BEFORE_SUFFIX} (PostgreSQL names are at most 63 bytes)")
    manifest = backup_ops.manifest(src, backup)  # exit 3 without a bucket, 2 for an unknown id
    if "files" not in manifest or "schema" not in manifest:
        raise BadInput(f"backup {manifest.get('backup_id', backup)} is not a logical backup (pg_dump -Fd with a "
                       "manifest); a refresh needs one", hint=f"take one with `taly backup create --env {from_env}`")

    refresh_id = f"refresh-{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    db = dst.primary.database
    report: dict[str, Any] = {
        "refresh_id": refresh_id, "status": "failed", "dry_run": dry_run, "from": from_env, "to": to_env,
        "backup_id": manifest["backup_id"], "restore_point": manifest["snapshot"]["at"],
        "source": manifest["source"], "anonymized": anonymize,
        "rules": {"file": shown, "fake_email_domain": rules.fake_email_domain, "key_source": None, "columns": []},
        "subset": None,
        "target": {"host": dst.primary.host, "port": dst.primary.port, "database": db,
                   "new_database": _db_name(db, refresh_id), "previous_database": None, "existed": None},
        "tables": {}, "anonymization": [],
        "verification": {"foreign_keys": [], "foreign_keys_passed": None, "invariants": [], "passed": None},
        "pii_scan": {"passed": None, "findings": [], "scratch": None, "target": None},
        "swapped": False, "previous_database": None, "started_at": iso(started), "finished_at": None,
        "timings": steps.timings, "cleanup": {}, "error": None,
    }

    # 2. The backup's schema, from its table of contents only, against the rules and the subset plan.
    schema, plan = _check_against_backup(src, manifest, rules, shown, anonymize, percent, progress)
    if anonymize:
        report["rules"]["columns"] = [{"table": rules_mod.qualify(t), "column": c, "strategy": s.strategy}
                                      for t, tr in rules.tables.items() for c, s in tr.columns.items()]
    tenants = manifest["tables"].get(plan.root if plan else rules_mod.qualify(rules.subset.root), {}).get("rows")
    if percent is not None:
        report["subset"] = {"percent": percent, "tenants_total": tenants,
                            "tenants_kept": rules_mod.tenants_to_keep(tenants or 0, percent),
                            "tenants_referenced": None, "plan": plan.to_json()}
    report["tables"] = {t: {"rows_before": v["rows"], "rows_after": None} for t, v in sorted(manifest["tables"].items())}

    drills.check_scratch_dir(dst)
    if dry_run:
        from ..datarefresh import fakes

        report["rules"]["key_source"] = fakes.load_key(dst.state_dir, create=False).source if anonymize else None
        report["target"].update(_target_state(dst, report["target"]["new_database"]))
        report["status"] = "dry-run"
        report["would"] = _would(report, from_env, to_env)
        report["timings"]["total_seconds"] = round(steps.elapsed(), 2)
        report["finished_at"] = iso(now())
        return RefreshReport.model_validate(report)
    from .refresh_run import RefreshRun, execute

    run = RefreshRun(src, dst, manifest, rules, plan, spec, percent, anonymize)
    return RefreshReport.model_validate(execute(run, report, steps, _would(report, from_env, to_env)))


def _check_against_backup(src: Environment, manifest: dict[str, Any], rules, shown: str, anonymize: bool,
                          percent: float | None, progress: Progress):
    from ..datarefresh import rules as rules_mod
    from ..datarefresh import schema as schema_mod
    from ..datarefresh import subset as subset_mod
    from . import drills

    with tempfile.TemporaryDirectory(prefix="taly-refresh-toc-") as tmp:
        files, ok = drills.download_verified(src, manifest, Path(tmp), quiet, only={"toc.dat"})
        if not ok or not files:
            problem = files[0].get("problem", "missing from the manifest") if files else "not in the manifest"
            raise RefreshFailed(f"backup {manifest['backup_id']}: toc.dat {problem}; the backup cannot be trusted")
        schema = schema_mod.from_dump_dir(Path(tmp))
    progress(f"backup {manifest['backup_id']} of {src.name} (restore point {manifest['snapshot']['at']}): "
             f"{len(schema.tables)} tables; checking {shown} against its schema")
    rules_mod.check(rules, schema, shown, tables=anonymize, subset=percent is not None)
    plan = subset_mod.plan(schema, rules.subset) if percent is not None else None
    return schema, plan


def _target_state(dst: Environment, new_db: str) -> dict[str, Any]:
    """What the target server holds now (read only): does the database exist, how big, any leftovers."""
    from ..adapters import postgres as pgt

    db = dst.primary.database
    with pgt.connect(dst.primary, dbname=MAINTENANCE_DB) as conn:
        rows = pgt.database_sizes(conn, [db, db + BEFORE_SUFFIX, new_db])
    return {"existed": db in rows, "size_bytes": rows.get(db), "before_refresh_exists": db + BEFORE_SUFFIX in rows}


def _would(report: dict[str, Any], from_env: str, to_env: str) -> list[str]:
    t = report["target"]
    steps = [f"download backup {report['backup_id']} of {from_env} and check every file's sha256",
             "restore it into a scratch PostgreSQL on 127.0.0.1 (torn down afterwards)"]
    if report["subset"]:
        s = report["subset"]
        steps.append(f"keep {s['tenants_kept']} of {s['tenants_total']} tenants ({s['percent']:g} %) and every row "
                     "they reference; delete the rest")
    if report["anonymized"]:
        steps.append(f"anonymise {len(report['rules']['columns'])} columns by {report['rules']['file']}")
    steps += ["check foreign keys and the drill spec's invariants; scan every text and JSON column for personal data",
              f"restore the result into a new database {t['new_database']} on {t['host']}:{t['port']} ({to_env}) "
              "and scan it again"]
    if t.get("existed") is None:  # not looked up (a run: the swap finds out)
        steps.append(f"swap: terminate sessions on {t['database']} and rename it {t['database']}{BEFORE_SUFFIX} if it "
                     f"exists (dropping an older one), rename {t['new_database']} {t['database']}")
    elif t["existed"]:
        older = " (dropping the older one)" if t.get("before_refresh_exists") else ""
        steps.append(f"swap: terminate sessions on {t['database']}, rename it {t['database']}{BEFORE_SUFFIX}{older}, "
                     f"rename {t['new_database']} {t['database']}")
    else:
        steps.append(f"rename {t['new_database']} {t['database']} (which does not exist yet)")
    return steps
