"""Running a planned `taly data refresh` (operations/refresh.py plans and refuses): the scratch copy, the
anonymisation and checks in it, the new database on the target, the swap; and the cleanup that always runs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..environment import Environment
from ..errors import Unreachable
from .steps import iso, now
from .steps import Change, Guarded, Outcome, Progress, Steps, confirm
from .steps import execute as execute_change

BEFORE_SUFFIX = "_before_refresh"  # the previous target database, kept under this name
MAINTENANCE_DB = "postgres"


@dataclass
class RefreshRun:
    """What a planned refresh runs with: source and target, the backup, the rules and the subset plan."""

    src: Environment
    dst: Environment
    manifest: dict[str, Any]
    rules: Any  # datarefresh.rules.Rules
    plan: Any  # datarefresh.subset.Plan, or None without a subset
    spec: dict[str, Any]
    percent: float | None
    anonymize: bool
    key: Any = None  # the anonymisation key, once loaded
    root: Path | None = None
    port: int = 0
    spawned: dict[str, Any] = field(default_factory=dict)  # the scratch instance, should the registry miss it
    created: bool = False  # the new database on the target (dropped unless swapped in)


def execute(run: RefreshRun, report: dict[str, Any], steps: Steps, would: list[str]) -> dict[str, Any]:
    """Run a planned refresh (operations.refresh plans it; `would` says what it does); returns its report.

    See refresh.py's docstring. It changes the target's own database: a protected target would need the
    confirmer's approval (refresh refuses prod before this).
    """
    from ..datarefresh import fakes
    from ..local import supervisor
    from . import drills

    dst, anonymize, percent, progress = run.dst, run.anonymize, run.percent, steps.progress
    refresh_id = report["refresh_id"]
    root = run.root = drills.drills_dir(dst) / refresh_id
    port = run.port = supervisor.free_port()
    change = Change(
        "data.refresh", f"refresh {refresh_id}", dst.name, dst.state_dir,
        {"from": report["from"], "to": report["to"], "backup_id": report["backup_id"], "anonymize": anonymize,
         "subset_percent": percent, "rules": report["rules"]["file"]}, would, changes_environment=True,
        before={"database": report["target"]["database"], "host": report["target"]["host"],
                "port": report["target"]["port"]},
        after={"refresh_id": refresh_id, "new_database": report["target"]["new_database"],
               "scratch": {"port": port, "dir": str(root)}})
    confirm(change, steps)
    run.key = fakes.load_key(dst.state_dir) if anonymize else None
    report["rules"]["key_source"] = run.key.source if run.key else None
    drills.register_scratch(dst, refresh_id, backup_id=report["backup_id"], root=root, port=port)
    progress(f"refresh {refresh_id}: {report['from']} backup {report['backup_id']} -> {report['to']} "
             f"{report['target']['host']}:{report['target']['port']}/{report['target']['database']}")
    outcome = execute_change(change, lambda s: _run(run, report, s), lambda o: _cleanup(run, report, progress),
                             lambda o: _conclude(report, steps, o), report, steps)
    outcome.reraise()
    return report


def _conclude(report: dict[str, Any], steps: Steps, outcome: Guarded) -> Outcome:
    """The refresh's status (ok: swapped in, no error) and what its audit outcome records."""
    report["status"] = "ok" if report["swapped"] and not report["error"] else "failed"
    report["timings"]["total_seconds"] = round(steps.elapsed(), 2)
    report["finished_at"] = iso(now())
    scan = report["pii_scan"]
    return Outcome("interrupted" if outcome.interrupted else report["status"],
                   before={"database": report["target"]["database"], "existed": report["target"]["existed"]},
                   after={"refresh_id": report["refresh_id"], "swapped": report["swapped"],
                          "database": report["target"]["database"] if report["swapped"] else None,
                          "previous_database": report["previous_database"],
                          "pii_scan_passed": scan["passed"],
                          "pii_findings": [{k: f[k] for k in ("table", "column", "pattern", "rows")}
                                           for f in scan["findings"]],
                          "rows": {t: v["rows_after"] for t, v in report["tables"].items()},
                          "cleanup": report["cleanup"]},
                   detail={"error": report["error"]} if report["error"] else None)


def _run(run: RefreshRun, report: dict[str, Any], steps: Steps) -> None:
    from ..adapters import postgres as pgt
    from ..datarefresh import anonymize as anon
    from ..datarefresh import pii
    from ..datarefresh import rules as rules_mod
    from ..datarefresh import schema as schema_mod
    from ..datarefresh import subset as subset_mod
    from ..local import scratch_postgres
    from ..local.context import USER
    from . import drills

    src, dst, manifest, rules, plan, spec = run.src, run.dst, run.manifest, run.rules, run.plan, run.spec
    percent, key, root, port, progress, say = run.percent, run.key, run.root, run.port, steps.progress, steps.say
    timings = report["timings"]
    lap = [steps.clock()]

    def done(step: str) -> None:
        timings[f"{step}_seconds"] = round(steps.clock() - lap[0], 2)
        lap[0] = steps.clock()

    # 1. Download and check every file.
    scratch = scratch_postgres.prepare(root, port)
    download = root / "download"
    download.mkdir(mode=0o700)
    say(f"downloading backup {manifest['backup_id']}: {len(manifest['files'])} files ({manifest['total_bytes']:,} bytes)")
    files, ok = drills.download_verified(src, manifest, download, progress)
    done("download")
    if not ok:
        bad = ", ".join(f"{e['file']} ({e['problem']})" for e in files if not e["passed"])
        report["error"] = f"backup files do not match the manifest: {bad}; nothing was restored"
        return

    # 2. The scratch instance, and the source's data in it.
    say(f"starting the scratch instance {report['refresh_id']} on 127.0.0.1:{port}")
    drills.start_scratch(dst, report["refresh_id"], scratch, run.spawned)
    scratch_ep = pgt.Endpoint("127.0.0.1", port, USER, scratch.password, manifest["source"]["database"], "scratch")
    with pgt.connect(scratch_ep, dbname=MAINTENANCE_DB) as admin:
        pgt.create_database(admin, scratch_ep.database)
    done("instance")
    steps.reached("restore_scratch")  # the scratch instance is up, nothing restored: a step hook may act here
    say("pg_restore -j 2 into the scratch instance")
    try:
        pgt.pg_restore(scratch_ep, download)
    except pgt.ToolFailed as exc:
        report["error"] = (f"restoring the source backup into the scratch instance failed ({exc.message}); "
                           "pg_restore's output is withheld because it can quote rows of the source")
        return
    done("restore_scratch")

    with pgt.connect(scratch_ep) as conn:
        schema = schema_mod.from_connection(conn)
        rules_mod.check(rules, schema, report["rules"]["file"], tables=key is not None, subset=percent is not None)
        # 3. Subset, anonymise, verify, scan: all in the scratch copy.
        if percent is not None:
            say(f"subset: keeping {percent:g} % of the tenants and what they reference")
            result = subset_mod.apply(conn, schema, plan, percent, progress)
            report["subset"].update({k: result[k] for k in ("tenants_total", "tenants_kept", "tenants_referenced",
                                                              "closure_rounds", "rows_pulled_in_by_references")})
            done("subset")
        if key is not None:
            say(f"anonymising {len(report['rules']['columns'])} columns ({report['rules']['file']})")
            try:
                report["anonymization"] = anon.apply(conn, schema, rules, key, progress)
            except anon.AnonymizeFailed as exc:
                report["error"] = str(exc)
                return
            done("anonymize")
        say("checking foreign keys and invariants")
        ver = report["verification"]
        fks = subset_mod.foreign_key_violations(conn, schema)
        ver["foreign_keys"] = [f for f in fks if not f["passed"]]
        ver["foreign_keys_checked"] = len(fks)
        ver["foreign_keys_passed"] = not ver["foreign_keys"]
        ver["invariants"] = [drills.run_invariant(conn, inv) for inv in spec.get("invariants", [])]
        ver["passed"] = ver["foreign_keys_passed"] and all(i["passed"] for i in ver["invariants"])
        say("scanning the scratch copy for personal data")
        scan = pii.scan(conn, schema, rules.fake_email_domain, progress)
        report["pii_scan"]["scratch"] = scan
        report["pii_scan"]["findings"] = scan["findings"]
        report["pii_scan"]["passed"] = scan["passed"]
        done("verify_scratch")
    if not ver["passed"]:
        broken = [f"foreign key {f['foreign_key']} ({f['violations']} rows)" for f in ver["foreign_keys"]]
        broken += [f"invariant '{i['name']}'" for i in ver["invariants"] if not i["passed"]]
        report["error"] = f"the scratch copy fails {', '.join(broken)}; the target was not touched"
        return
    if not scan["passed"]:
        where = sorted({f"{f['table']}.{f['column']} ({f['pattern']})" for f in scan["findings"]})
        report["error"] = (f"personal data remains in {', '.join(where)}; the target was not touched. "
                           f"Add rules for these columns to {report['rules']['file']}")
        return

    # 4. Into a new database on the target, scanned again, then swapped in.
    say("pg_dump the scratch copy")
    out = root / "refreshed"
    pgt.pg_dump(scratch_ep, out, snapshot=None, jobs=2, compress=1)
    done("dump")
    target = report["target"]
    new_ep = dataclasses.replace(dst.primary, database=target["new_database"], role="primary")
    say(f"creating {target['new_database']} on {dst.name}'s primary {dst.primary.address} and restoring into it")
    with pgt.connect(dst.primary, dbname=MAINTENANCE_DB) as admin:
        target["existed"] = pgt.database_exists(admin, target["database"])
        run.created = True  # before CREATE: a half-created database is dropped too
        pgt.create_database(admin, target["new_database"])
    try:
        pgt.pg_restore(new_ep, out)
    except pgt.ToolFailed as exc:
        report["error"] = f"pg_restore into {target['new_database']} failed: {exc.output}"
        return
    done("restore_target")
    say(f"scanning {target['new_database']} for personal data")
    with pgt.connect(new_ep) as conn:
        tschema = schema_mod.from_connection(conn)
        tscan = pii.scan(conn, tschema, rules.fake_email_domain, progress)
        invariants = [drills.run_invariant(conn, inv) for inv in spec.get("invariants", [])]
        for t in sorted(tschema.tables):
            n = pgt.count_rows(conn, tschema.tables[t].schema, tschema.tables[t].bare)
            key_ = next((k for k in report["tables"] if k.replace('"', "") == t), t)
            report["tables"].setdefault(key_, {"rows_before": None})["rows_after"] = n
    report["pii_scan"]["target"] = tscan
    report["pii_scan"]["passed"] = scan["passed"] and tscan["passed"]
    report["pii_scan"]["findings"] = scan["findings"] + tscan["findings"]
    report["verification"]["target_invariants"] = invariants
    done("verify_target")
    if not tscan["passed"]:
        report["error"] = f"personal data found in {target['new_database']} on the target; it was dropped"
        return
    if not all(i["passed"] for i in invariants):
        report["error"] = f"{target['new_database']} fails the invariants; it was dropped"
        return
    steps.shield()  # the swap runs to its end: a half-swapped target is worse than a late Ctrl-C
    say(f"swapping {target['new_database']} in as {target['database']}")
    _swap(dst, target, report, progress)
    done("swap")
    say(f"refreshed {dst.name} {target['database']}" + (f"; the previous data is in {report['previous_database']}"
                                                        if report["previous_database"] else ""))


def _swap(dst: Environment, target: dict[str, Any], report: dict[str, Any], progress: Progress) -> None:
    """Terminate the database's sessions, rename it <db>_before_refresh (dropping an older one), rename the new one.

    New connections to <db> are refused meanwhile (ALLOW_CONNECTIONS false, when we own it); whatever
    fails, the old database ends up under its own name, accepting connections again.
    """
    from ..adapters import postgres as pgt

    db, new, before = target["database"], target["new_database"], target["database"] + BEFORE_SUFFIX
    with pgt.connect(dst.primary, dbname=MAINTENANCE_DB) as admin:
        exists = pgt.database_exists(admin, db)
        if exists:
            pgt.drop_database(admin, before)
            blocked = renamed = False
            try:
                try:
                    pgt.allow_connections(admin, db, False)
                    blocked = True
                except pgt.errors.InsufficientPrivilege:
                    progress(f"  cannot block new connections to {db} (not its owner); terminating and retrying")
                deadline = time.monotonic() + 30
                while not renamed:
                    terminated = pgt.terminate_sessions(admin, db)
                    if terminated:
                        progress(f"  terminated {terminated} sessions on {db}")
                    try:
                        pgt.rename_database(admin, db, before)
                        renamed = True
                    except pgt.errors.ObjectInUse:
                        if time.monotonic() > deadline:
                            raise Unreachable(f"{db} still had sessions after 30 s of terminating them; not swapped") from None
                        time.sleep(0.2)
                pgt.rename_database(admin, new, db)
            except BaseException:
                if renamed:  # put the old one back under its name
                    pgt.rename_database(admin, before, db)
                raise
            finally:
                if blocked:
                    pgt.allow_connections(admin, before if renamed and pgt.database_exists(admin, before) else db, True)
        else:
            pgt.rename_database(admin, new, db)
    report["swapped"] = True
    report["previous_database"] = before if exists else None
    target["previous_database"] = report["previous_database"]


def _cleanup(run: RefreshRun, report: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Drop the new database unless it was swapped in; tear the scratch instance down. Never raises."""
    from . import drills

    dst, refresh_id = run.dst, report["refresh_id"]
    out: dict[str, Any] = {"new_database_dropped": None}
    if run.created and not report["swapped"]:
        from ..adapters import postgres as pgt

        new = report["target"]["new_database"]
        try:
            with pgt.connect(dst.primary, dbname=MAINTENANCE_DB) as admin:
                pgt.drop_database(admin, new)
            out["new_database_dropped"] = True
            progress(f"dropped {new} on the target; {report['target']['database']} is as it was")
        except Exception as exc:  # noqa: BLE001 - reported, and named so it can be dropped by hand
            out["new_database_dropped"] = False
            out["drop_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            progress(f"warning: could not drop {new} on the target: {out['drop_error']}; drop it by hand")
    try:
        out.update(drills.teardown(dst, refresh_id, False, progress, run.spawned))
    except Exception as exc:  # noqa: BLE001
        out["teardown_error"] = f"{type(exc).__name__}: {exc}"
        out["remove_with"] = f"taly drill reap --env {dst.name}"
    return out
