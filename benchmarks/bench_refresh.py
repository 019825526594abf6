"""Benchmark `taly data refresh`: a full anonymised copy, and a 10 % subset, of the local estate.

In one run:
  - a local estate of --size rows (`taly local up`; or the running one in --state-dir) plays prod;
  - a second, throwaway PostgreSQL plays the staging and dev servers, described by contracts in a
    temporary project root, with their credentials in the estate's Secrets Manager emulator;
  - `taly backup create --env local`, then `taly data refresh --from prod --to staging --anonymize`
    and `--to dev --anonymize --subset 10`, each timed by its own report (and as a whole command).

Everything it started is stopped (by pid) and removed at the end, also on Ctrl-C and SIGTERM. Run by hand:

    .venv/bin/python benchmarks/bench_refresh.py [--size N] [--state-dir DIR]

Prints JSON on stdout (progress on stderr); figures go into the issue's closing note, not into assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import log, taly  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZE = 100_000
TARGET_DATABASES = {"staging": "taly_staging", "dev": "taly_dev"}


def start_target(work: Path):
    """The staging and dev server: a fresh PostgreSQL with an empty CMS database for each."""
    from taly_ops.local import postgres, sample_data, scratch_postgres, supervisor

    s = scratch_postgres.prepare(work / "target", supervisor.free_port())
    scratch_postgres.initdb(s)
    scratch_postgres.spawn(s)
    try:
        scratch_postgres.wait_ready(s)
        admin = postgres.conninfo("127.0.0.1", s.port, s.password, dbname="postgres")
        for db in TARGET_DATABASES.values():
            postgres._query(admin, f"CREATE DATABASE {db}")
            sample_data.load(postgres.conninfo("127.0.0.1", s.port, s.password, dbname=db), 1_000)
    except BaseException:  # main() has no handle on it yet: stop it here, or it outlives its removed directory
        scratch_postgres.stop(s.pid, s.start_time, s.pgid)
        raise
    return s


def project(work: Path, state, target) -> dict[str, str]:
    """contracts/{prod,staging,dev}.json in a temporary project root; the environment taly runs in."""
    from taly_ops.local import aws_emulator

    root = work / "project"
    root.mkdir()
    shutil.copytree(REPO / "runbooks", root / "runbooks")
    (root / "Pulumi.yaml").write_text("name: taly\n")
    (root / "contracts").mkdir()
    aws = state.endpoints["aws"]
    sm = aws_emulator.client("secretsmanager", aws["endpoint_url"])
    contracts = {"prod": {**state.contract, "environment": "prod"}}
    for env, db in TARGET_DATABASES.items():
        arn = sm.create_secret(Name=f"taly/{env}/bench-{os.getpid()}/credentials",
                               SecretString=json.dumps({"username": "taly", "password": target.password}))["ARN"]
        contracts[env] = {**state.contract, "environment": env,
                          "database": {**state.contract["database"], "primary_id": f"taly-{env}-db",
                                       "primary_endpoint": "127.0.0.1", "port": target.port, "database": db,
                                       "replica_ids": [], "replica_endpoints": [], "master_secret_arn": arn}}
    for env, c in contracts.items():
        (root / "contracts" / f"{env}.json").write_text(json.dumps(c))
    return {"TALY_PROJECT_ROOT": str(root), "TALY_STATE_DIR": str(root / "state"),
            "AWS_ENDPOINT_URL": aws["endpoint_url"], "AWS_ACCESS_KEY_ID": aws["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"], "AWS_DEFAULT_REGION": aws["region"]}


def refresh(to_env: str, env: dict[str, str], *extra: str) -> dict:
    wall, report, code = taly("data", "refresh", "--from", "prod", "--to", to_env, "--anonymize", *extra,
                              json_out=True, env=env)
    if not report or report.get("status") != "ok":
        raise SystemExit(f"taly data refresh --to {to_env} failed (exit {code}): {(report or {}).get('error')}")
    rows = {t: v for t, v in report["tables"].items()}
    return {"command_wall_seconds": round(wall, 2), "timings": report["timings"],
            "rows_before": sum(v["rows_before"] or 0 for v in rows.values()),
            "rows_after": sum(v["rows_after"] or 0 for v in rows.values()),
            "subset": report.get("subset") and {k: report["subset"].get(k) for k in
                                                 ("percent", "tenants_kept", "tenants_referenced", "tenants_total")},
            "pii_scan_passed": report["pii_scan"]["passed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="rows for `taly local up --size`")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="estate state dir (reused if an estate runs there; default: a fresh dir under /tmp)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM still runs the cleanup below

    from taly_ops.local import scratch_postgres
    from taly_ops.local.state import load

    work = Path(tempfile.mkdtemp(prefix="taly-bench-refresh-"))
    os.chmod(work, 0o755)  # as root, PostgreSQL runs as `postgres` and must enter it
    state_dir = (args.state_dir or work / "estate").expanduser().absolute()
    state = load(state_dir) if state_dir.is_dir() else None
    reuse = state is not None and state.phase == "running" and state.components and not state.dead()
    target = None
    try:
        if not reuse:
            _, _, code = taly("local", "up", "--size", str(args.size), "--state-dir", str(state_dir))
            if code != 0:
                raise SystemExit(f"taly local up failed (exit {code})")
            state = load(state_dir)
        target = start_target(work)
        env = project(work, state, target)
        wall, manifest, code = taly("backup", "create", "--env", "prod", json_out=True, env=env)
        if code != 0 or not manifest:
            raise SystemExit(f"taly backup create --env prod failed (exit {code})")
        result = {
            "size_rows": state.size, "estate_reused": bool(reuse),
            "backup": {"command_wall_seconds": round(wall, 2), "duration_seconds": manifest["duration_seconds"],
                       "total_bytes": manifest["total_bytes"]},
            "full_copy_to_staging": refresh("staging", env),
            "subset_10_percent_to_dev": refresh("dev", env, "--subset", "10"),
        }
        print(json.dumps(result, indent=2))
    finally:
        if target is not None and target.pid is not None:
            scratch_postgres.stop(target.pid, target.start_time, target.pgid)
        if not reuse:
            taly("local", "down", "--state-dir", str(state_dir))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
