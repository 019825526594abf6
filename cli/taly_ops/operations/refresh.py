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

import dataclasses
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import VERDICT, BadInput, TalyError, Unreachable
from ..environment import Environment, check_name
from .backup import iso, now

Progress = Callable[[str], None]
BEFORE_SUFFIX = "_before_refresh"
MAINTENANCE_DB = "postgres"


class RefreshFailed(TalyError):
    """A negative verdict before anything started (the backup's schema file does not match its manifest)."""
    exit_code = VERDICT


def _noop(line: str) -> None:
    pass


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


def refresh(from_env: str, to_env: str, *, anonymize: bool, subset: float | None = None,
            rules_path: Path | None = None, backup: str = "latest", dry_run: bool = False,
            state_dir: Path | None = None, progress: Progress = _noop) -> dict[str, Any]:
    """Run (or with dry_run, plan) one refresh; returns its report (status ok | failed | dry-run).

    BadInput (2) and Unreachable (3) are raised before anything changes, or after the cleanup and the
    audit entry when they happen later; drill.Interrupted (SIGTERM/SIGINT) likewise.
    """
    from ..datarefresh import rules as rules_mod
    from ..project import project_root
    from . import backup as backup_ops
    from . import drill as drill_ops

    t0 = time.monotonic()
    started = now()
    refuse(from_env, to_env, anonymize)
    root = project_root()
    path = rules_path or root / rules_mod.DEFAULT_RULES
    shown = _shown(path, root)
    rules = rules_mod.load(path, shown)
    percent = rules_mod.subset_percent(rules, to_env, subset)
    spec_path = root / drill_ops.SPEC
    spec = drill_ops.load_spec(spec_path)

    src = backup_ops.resolve(from_env, state_dir if from_env == "local" else None)
    dst = backup_ops.resolve(to_env, state_dir if to_env == "local" else None)
    if dst.primary is None:
        raise BadInput(f"{to_env} has no primary database endpoint to refresh")
    target_addrs = backup_ops.addresses(dst.primary.host, dst.primary.port)
    if target_addrs & src.source_addresses():
        raise BadInput(f"the target's primary {dst.primary.address} is an endpoint of {from_env}; refusing to "
                       "refresh a database over its own source")
    prod_addrs = backup_ops.contract_addresses("prod") or set()
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
        "timings": {}, "cleanup": {}, "error": None,
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

    drill_ops.check_scratch_dir(dst)
    if dry_run:
        from ..datarefresh import fakes

        report["rules"]["key_source"] = fakes.load_key(dst.state_dir, create=False).source if anonymize else None
        report["target"].update(_target_state(dst, report["target"]["new_database"]))
        report["status"] = "dry-run"
        report["would"] = _would(report, from_env, to_env)
        report["timings"]["total_seconds"] = round(time.monotonic() - t0, 2)
        report["finished_at"] = iso(now())
        return report
    return _execute(src, dst, manifest, rules, schema, plan, spec, percent, anonymize, report, t0, progress)


def _check_against_backup(src: Environment, manifest: dict[str, Any], rules, shown: str, anonymize: bool,
                          percent: float | None, progress: Progress):
    from ..datarefresh import rules as rules_mod
    from ..datarefresh import schema as schema_mod
    from ..datarefresh import subset as subset_mod
    from . import drill as drill_ops

    with tempfile.TemporaryDirectory(prefix="taly-refresh-toc-") as tmp:
        files, ok = drill_ops.download_verified(src, manifest, Path(tmp), _noop, only={"toc.dat"})
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
    if t.get("existed"):
        older = " (dropping the older one)" if t.get("before_refresh_exists") else ""
        steps.append(f"swap: terminate sessions on {t['database']}, rename it {t['database']}{BEFORE_SUFFIX}{older}, "
                     f"rename {t['new_database']} {t['database']}")
    else:
        steps.append(f"rename {t['new_database']} {t['database']} (which does not exist yet)")
    return steps


# --- the run ------------------------------------------------------------------------------------------------

def _execute(src, dst, manifest, rules, schema, plan, spec, percent, anonymize, report, t0, progress) -> dict[str, Any]:
    from .. import audit
    from ..datarefresh import fakes
    from ..local import supervisor
    from . import drill as drill_ops

    refresh_id = report["refresh_id"]
    root = drill_ops._drills_dir(dst) / refresh_id
    port = supervisor.free_port()
    key = fakes.load_key(dst.state_dir) if anonymize else None
    report["rules"]["key_source"] = key.source if key else None
    inputs = {"from": report["from"], "to": report["to"], "backup_id": report["backup_id"], "anonymize": anonymize,
              "subset_percent": percent, "rules": report["rules"]["file"]}
    drill_ops.register_scratch(dst, refresh_id, backup_id=report["backup_id"], root=root, port=port)
    audit.record(dst.state_dir, "data.refresh.start", dst.name, inputs=inputs, outcome="started",
                 before={"database": report["target"]["database"], "host": report["target"]["host"],
                         "port": report["target"]["port"]},
                 after={"refresh_id": refresh_id, "new_database": report["target"]["new_database"],
                        "scratch": {"port": port, "dir": str(root)}})
    progress(f"refresh {refresh_id}: {report['from']} backup {report['backup_id']} -> {report['to']} "
             f"{report['target']['host']}:{report['target']['port']}/{report['target']['database']}")
    spawned: dict[str, Any] = {}
    state = {"created": False}
    outcome = drill_ops.run_guarded(
        lambda flags: _run(src, dst, manifest, rules, plan, spec, percent, key, root, port, report, t0, progress,
                           spawned, state, flags),
        lambda o: _cleanup(dst, report, state, refresh_id, progress, spawned),
        report, f"refresh {refresh_id}", progress)
    report["status"] = "ok" if report["swapped"] and not report["error"] else "failed"
    report["timings"]["total_seconds"] = round(time.monotonic() - t0, 2)
    report["finished_at"] = iso(now())
    scan = report["pii_scan"]
    audit.record(dst.state_dir, "data.refresh", dst.name, inputs=inputs,
                 outcome="interrupted" if outcome.interrupted else report["status"],
                 before={"database": report["target"]["database"], "existed": report["target"]["existed"]},
                 after={"refresh_id": refresh_id, "swapped": report["swapped"],
                        "database": report["target"]["database"] if report["swapped"] else None,
                        "previous_database": report["previous_database"],
                        "pii_scan_passed": scan["passed"],
                        "pii_findings": [{k: f[k] for k in ("table", "column", "pattern", "rows")}
                                         for f in scan["findings"]],
                        "rows": {t: v["rows_after"] for t, v in report["tables"].items()},
                        "cleanup": report["cleanup"]},
                 detail={"error": report["error"]} if report["error"] else None)
    outcome.reraise()
    return report


def _run(src, dst, manifest, rules, plan, spec, percent, key, root: Path, port: int, report: dict[str, Any],
         t0: float, progress: Progress, spawned: dict[str, Any], state: dict[str, Any], flags: dict[str, bool]) -> None:
    from ..adapters import postgres as pgt
    from ..datarefresh import anonymize as anon
    from ..datarefresh import pii
    from ..datarefresh import rules as rules_mod
    from ..datarefresh import schema as schema_mod
    from ..datarefresh import subset as subset_mod
    from ..local import scratch_postgres
    from ..local.context import USER
    from . import drill as drill_ops

    timings = report["timings"]
    lap = [time.monotonic()]

    def say(msg: str) -> None:
        progress(f"{time.monotonic() - t0:5.1f}s  {msg}")

    def done(step: str) -> None:
        timings[f"{step}_seconds"] = round(time.monotonic() - lap[0], 2)
        lap[0] = time.monotonic()

    # 1. Download and check every file.
    scratch = scratch_postgres.prepare(root, port)
    download = root / "download"
    download.mkdir(mode=0o700)
    say(f"downloading backup {manifest['backup_id']}: {len(manifest['files'])} files ({manifest['total_bytes']:,} bytes)")
    files, ok = drill_ops.download_verified(src, manifest, download, progress)
    done("download")
    if not ok:
        bad = ", ".join(f"{e['file']} ({e['problem']})" for e in files if not e["passed"])
        report["error"] = f"backup files do not match the manifest: {bad}; nothing was restored"
        return

    # 2. The scratch instance, and the source's data in it.
    say(f"starting the scratch instance {report['refresh_id']} on 127.0.0.1:{port}")
    drill_ops.start_scratch(dst, report["refresh_id"], scratch, spawned)
    scratch_ep = pgt.Endpoint("127.0.0.1", port, USER, scratch.password, manifest["source"]["database"], "scratch")
    with pgt.connect(scratch_ep, dbname=MAINTENANCE_DB) as admin:
        pgt.create_database(admin, scratch_ep.database)
    done("instance")
    if hold := float(os.environ.get("TALY_REFRESH_HOLD_SECONDS") or 0):
        say(f"holding {hold:g}s with the scratch instance up (TALY_REFRESH_HOLD_SECONDS)")
        time.sleep(hold)
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
        ver["invariants"] = [drill_ops._invariant(conn, inv) for inv in spec.get("invariants", [])]
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
        state["created"] = True  # before CREATE: a half-created database is dropped too
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
        invariants = [drill_ops._invariant(conn, inv) for inv in spec.get("invariants", [])]
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
    flags["shielded"] = True  # the swap runs to its end: a half-swapped target is worse than a late Ctrl-C
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


def _cleanup(dst: Environment, report: dict[str, Any], state: dict[str, Any], refresh_id: str, progress: Progress,
             spawned: dict[str, Any]) -> dict[str, Any]:
    """Drop the new database unless it was swapped in; tear the scratch instance down. Never raises."""
    from . import drill as drill_ops

    out: dict[str, Any] = {"new_database_dropped": None}
    if state.get("created") and not report["swapped"]:
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
        out.update(drill_ops._teardown(dst, refresh_id, False, progress, spawned))
    except Exception as exc:  # noqa: BLE001
        out["teardown_error"] = f"{type(exc).__name__}: {exc}"
        out["remove_with"] = f"taly drill reap --env {dst.name}"
    return out
