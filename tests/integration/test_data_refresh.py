"""`taly data refresh` against real PostgreSQL: the session's shared estate as the source (as `local`, and as
`prod` through a contract), the session's second PostgreSQL (conftest.py `postgres_server`) as the targets
`staging` and `dev` (one database each, described by contracts/<env>.json with their credentials in the
estate's Secrets Manager emulator).

The source gets generated rows holding every kind of personal data (pii_rows.py) before its backup; they are
deleted after the module, and the estate's data is checked to be as it was. Everything is checked by the
test's own queries too: the originals are searched for by value, unique constraints and foreign keys are
counted, the drill spec's invariants are run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from taly_ops.datarefresh import anonymize, fakes, patterns, schema as schema_mod, subset
from taly_ops.local import aws_emulator, postgres, sample_data, supervisor
from taly_ops.local.state import State
from taly_ops.operations import drills as drill_ops

import pii_rows

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DBS = {"staging": "taly_staging", "dev": "taly_dev"}
PII_TABLES = ("notifications", "content_revisions", "payments", "bookings", "users")  # the order references allow


# --- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local(local_estate) -> State:
    return local_estate


@pytest.fixture(scope="module")
def target(postgres_server):
    """The targets' server, with the CMS in a database per target; the module's databases dropped after it."""
    for db in DBS.values():
        postgres._query(postgres_server.conninfo(), f"CREATE DATABASE {db}")
        sample_data.load(postgres_server.conninfo(db), 1_000)
    yield postgres_server
    for db in databases(postgres_server):
        if db.startswith(tuple(DBS.values())):
            postgres._query(postgres_server.conninfo(), f"DROP DATABASE {db} WITH (FORCE)")


@pytest.fixture(scope="module")
def project(request, local, target, make_contract, public_dir, taly):
    """A project root with contracts for prod (the local estate), staging and dev (the target server)."""
    aws = local.endpoints["aws"]
    sm = aws_emulator.client("secretsmanager", aws["endpoint_url"])
    contracts = [make_contract.from_estate(local, "prod")]
    for env, db in DBS.items():
        arn = sm.create_secret(Name=f"taly/{env}/refresh-test/credentials",
                               SecretString=json.dumps({"username": "taly", "password": target.password}))["ARN"]
        contracts.append(make_contract.from_estate(local, env, database={
            "primary_id": f"taly-{env}-db", "primary_endpoint": "127.0.0.1", "port": target.port, "database": db,
            "replica_ids": [], "replica_endpoints": [], "master_secret_arn": arn}))
    made = make_contract.project(public_dir("taly-refresh-project-"), *contracts, aws_endpoint=aws["endpoint_url"])
    made.env["TALY_ANONYMIZE_KEY"] = ""

    def cleanup() -> None:
        """A failed test may have left a scratch instance: `taly drill reap` for each target."""
        for name in DBS:
            if (made.state / name / "drills").exists():
                reaped = taly("drill", "reap", "--env", name, env=made.env)
                if reaped.exit_code != 0:
                    print(f"reaping {name} failed: {reaped.output}", file=sys.stderr)

    request.addfinalizer(cleanup)
    return made


@pytest.fixture(scope="module")
def source(local, estate_db, backups):
    """The personal data, inserted on the primary, replicated, then backed up; (originals, backup manifest).

    Deleted after the module: the shared estate's data is then what it was (its fingerprint is checked)."""
    primary = estate_db.conninfo(local)
    pristine = sample_data.fingerprint(primary)
    with psycopg.connect(primary, autocommit=True) as conn:
        tenants = [r[0] for r in conn.execute("SELECT id FROM tenants ORDER BY id").fetchall()]
        originals = pii_rows.insert(conn, tenants, per_tenant=2)
        # A reference across tenants: an agency editor (a user of a tenant the 10 % subset does not choose)
        # revises an item of a chosen tenant. The subset must keep that user, and its tenant row.
        chosen = [r[0] for r in conn.execute("SELECT id FROM tenants ORDER BY md5(%s || id::text), id LIMIT 2",
                                             (subset.SELECTION_SALT,)).fetchall()]
        other = next(t for t in tenants if t not in chosen)
        editor = conn.execute("SELECT min(id) FROM users WHERE tenant_id = %s AND id > %s",
                              (other, pii_rows.BASE_ID)).fetchone()[0]
        item = conn.execute("SELECT min(id) FROM content_items WHERE tenant_id = %s", (chosen[0],)).fetchone()[0]
        conn.execute("INSERT INTO content_revisions VALUES (%s, %s, 5000, %s, 'Agency edit', 'Tightened the copy.', now())",
                     (pii_rows.BASE_ID + 10_000, item, editor))
        originals["cross"] = {"chosen": chosen, "editor": editor, "editor_tenant": other}
    try:
        # The backup reads the replica: wait until it has replayed the last write (each insert commits alone).
        estate_db.wait_replica(local)
        replica = estate_db.conninfo(local, "replica")
        cross_edit = f"SELECT count(*) FROM content_revisions WHERE id = {pii_rows.BASE_ID + 10_000}"
        assert postgres._query(replica, cross_edit) == [(1,)]
        assert postgres._query(replica, f"SELECT count(*) FROM users WHERE id > {pii_rows.BASE_ID}")[0][0] == \
            len(originals["ids"]["users"])
        yield originals, backups.create(local)
    finally:
        with psycopg.connect(primary, autocommit=True) as conn:
            for table in PII_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE id > %s", (pii_rows.BASE_ID,))
        estate_db.wait_replica(local)
        assert sample_data.fingerprint(primary) == pristine  # the shared estate as it was


@pytest.fixture
def refresh(taly, local, project):
    """`taly data refresh ARGS --state-dir <the estate>` in the project's environment (env= adds to it)."""
    run = taly.with_args("--state-dir", local.state_dir, env=project.env)
    return lambda *args, env=None: run("data", "refresh", *args, env=env)


def databases_on_local(estate_db, local) -> set[str]:
    rows = postgres._query(estate_db.conninfo(local, dbname="postgres"), "SELECT datname FROM pg_database")
    return {r[0] for r in rows}


def databases(target) -> set[str]:
    return {r[0] for r in postgres._query(target.conninfo(), "SELECT datname FROM pg_database WHERE NOT datistemplate")}


def no_personal_data_in(text: str, originals: dict) -> None:
    for kind in ("emails", "phones", "cards", "names"):
        for value in originals[kind]:
            assert value.lower() not in text.lower(), (kind, "an original value reached the output")


CONSTRAINTS = ("SELECT contype::text, count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
               "WHERE n.nspname = 'public' AND convalidated GROUP BY 1")


def check_database(conn, originals: dict) -> dict:
    """The test's own checks of a refreshed database; returns row counts per table."""
    assert pii_rows.remaining(conn, originals) == []
    s = schema_mod.from_connection(conn)
    # Unique constraints and foreign keys are there, validated, and hold: the schema's 9 primary keys,
    # 7 unique constraints, 17 foreign keys and 13 checks.
    assert dict(conn.execute(CONSTRAINTS).fetchall()) == {"p": 9, "u": 7, "f": 17, "c": 13}
    assert all(v["violations"] == 0 for v in subset.foreign_key_violations(conn, s))
    assert conn.execute("SELECT count(*) = count(DISTINCT email) FROM users").fetchone()[0]
    assert conn.execute("SELECT count(*) = count(DISTINCT provider_ref) FROM payments").fetchone()[0]
    spec = drill_ops.load_spec(REPO / drill_ops.SPEC)
    for inv in spec["invariants"]:
        assert conn.execute(inv["sql"]).fetchone()[0] == 0, inv["name"]
    # Every address is a fake one, every phone in the drama range, every card detail gone.
    assert conn.execute("SELECT count(*) FROM users WHERE email NOT LIKE 'user.%@example.invalid'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM users WHERE phone !~ '^\\+44 7700 900[0-9]{3}$'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM payments WHERE card_last4 <> '0000' OR card_holder <> 'REMOVED' "
                        "OR provider_ref !~ '^anon_[a-p]{24}$'").fetchone()[0] == 0
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sample_data.TABLES}


# --- the tests ------------------------------------------------------------------------------------------

def test_the_dump_parser_fixture_matches_a_real_backup_and_sql_fakes_match_python(local, source, target, tmp_path):
    """The unit tests' schema fixture is what a real backup holds; the SQL fakes equal fakes.py's."""
    from taly_ops.operations import backup as backup_ops

    _, manifest = source
    env = backup_ops.resolve("local", local.state_dir)
    files, ok = drill_ops.download_verified(env, manifest, tmp_path, lambda s: None, only={"toc.dat"})
    assert ok and [f["file"] for f in files] == ["toc.dat"]
    from_backup = schema_mod.from_dump_dir(tmp_path)
    fixture = schema_mod.from_dump_sql((REPO / "tests" / "unit" / "data" / "cms_schema_dump.sql").read_text())
    assert from_backup.to_json() == fixture.to_json()
    with psycopg.connect(target.conninfo("taly_dev"), autocommit=True) as conn:
        assert schema_mod.from_connection(conn).to_json() == fixture.to_json()
        key = fakes.Key(b"integration-test-key-0123456789", "t")
        for value in ("Alice.Fairweather@Gmail.com ", "bob@x.org", "", None):
            assert anonymize.sql_fake(conn, key, "fake_email", value) == fakes.fake_email(key, value)
            assert anonymize.sql_fake(conn, key, "fake_name", value) == fakes.fake_name(key, value)
            assert anonymize.sql_fake(conn, key, "fake_phone", value) == fakes.fake_phone(key, value)
            assert anonymize.sql_fake(conn, key, "hash", value, prefix="p_", length=30) == \
                fakes.hash_token(key, value, "p_", 30)
        # PostgreSQL's regex engine and Python's agree on what the patterns find.
        corpus = ["call +44 20 7946 0018 now", "4111-1111-1111-1111", "x_4111111111111111", "N00012345",
                  "mail a.b+c@d.co.uk", "(212) 555-0199", "06 12 34 56 78", "2024-05-01T10:00:00+01:00",
                  "+49 151 12345678", "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
        import re

        for text in corpus:
            for name, p in patterns.PATTERNS.items():
                got = [r[0][0] for r in conn.execute("SELECT regexp_matches(%s, %s, 'g')", (text, p)).fetchall()]
                assert got == re.findall(p, text), (name, text)


def test_dry_run_resolves_everything_and_changes_nothing(local, source, target, project, refresh, taly):
    _, manifest = source
    before = {db: sample_data.fingerprint(target.conninfo(db)) for db in DBS.values()}
    dbs = databases(target)
    result = refresh("--from", "local", "--to", "dev", "--anonymize", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    r = taly.json(result)
    assert r["status"] == "dry-run" and r["backup_id"] == manifest["backup_id"] and not r["swapped"]
    assert r["subset"]["percent"] == 10 and r["subset"]["tenants_total"] == 20 and r["subset"]["tenants_kept"] == 2
    assert {"table": "public.users", "column": "email", "strategy": "fake_email"} in r["rules"]["columns"]
    assert r["target"]["existed"] is True and r["target"]["database"] == "taly_dev"
    assert any("swap" in step for step in r["would"]) and "not created yet" in r["rules"]["key_source"]
    table = refresh("--from", "local", "--to", "staging", "--anonymize", "--dry-run", env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "DRY-RUN" in table.stdout and "would:" in table.stdout
    # Nothing changed: not the databases, not the state (no key, no audit entry, no scratch instance).
    assert {db: sample_data.fingerprint(target.conninfo(db)) for db in DBS.values()} == before
    assert databases(target) == dbs
    for env in DBS:
        assert not (project.state / env / fakes.KEY_FILE).exists()
        assert taly.audit(project.state / env) == [] and taly.drill_registry(project.state / env) == {}


def test_refresh_into_staging_leaves_no_personal_data(local, source, target, project, refresh, taly):
    originals, manifest = source
    before = sample_data.fingerprint(target.conninfo("taly_staging"))
    t0 = time.monotonic()
    result = refresh("--from", "local", "--to", "staging", "--anonymize", "--backup", manifest["backup_id"], "-o", "json")
    elapsed = time.monotonic() - t0
    assert result.exit_code == 0, result.stdout + result.stderr
    r = taly.json(result)
    print(f"\nrefresh of {local.size + len(originals['ids']['users']) * 5:,} rows into staging: {elapsed:.1f}s, "
          f"{r['timings']}", file=sys.stderr)
    assert r["status"] == "ok" and r["swapped"] and r["previous_database"] == "taly_staging_before_refresh"
    assert r["pii_scan"]["passed"] and r["pii_scan"]["scratch"]["passed"] and r["pii_scan"]["target"]["passed"]
    assert r["pii_scan"]["scratch"]["columns_scanned"] == 35
    assert r["subset"] is None and r["anonymized"]
    assert {a["table"] + "." + a["column"] for a in r["anonymization"]} >= {
        "public.users.email", "public.bookings.notes", "public.notifications.payload", "public.content_revisions.body"}
    notes = next(a for a in r["anonymization"] if a["column"] == "notes")
    assert notes["rows_changed"] == len(originals["ids"]["bookings"])
    for t, v in r["tables"].items():
        assert v["rows_before"] == v["rows_after"] == manifest["tables"][t]["rows"], t
    no_personal_data_in(result.stdout + result.stderr, originals)

    with psycopg.connect(target.conninfo("taly_staging"), autocommit=True) as conn:
        counts = check_database(conn, originals)
        assert sum(counts.values()) == sum(t["rows"] for t in manifest["tables"].values())
        # The same person gets the same fake everywhere: users.email (SQL) and the booking note (Python).
        uid = originals["ids"]["users"][0]
        email, phone = conn.execute("SELECT email, phone FROM users WHERE id = %s", (uid,)).fetchone()
        note = conn.execute("SELECT notes FROM bookings WHERE id = %s", (uid,)).fetchone()[0]
        assert email in note and phone in note and fakes.CARD_REMOVED in note
        assert note.startswith("Call me on ") and note.endswith("; thanks!")
        payload = conn.execute("SELECT payload FROM notifications WHERE id = %s", (uid,)).fetchone()[0]
        assert payload["to"] == email and "card_number" not in payload and payload["context"]["raw"] == fakes.CARD_REMOVED
        assert payload["template"] == "booking_confirmed"
    # The previous data is kept beside it, untouched.
    assert sample_data.fingerprint(target.conninfo("taly_staging_before_refresh")) == before
    assert not any("_refresh_" in d for d in databases(target))
    # Cleaned up, and audited without secrets or personal data.
    assert taly.drill_registry(project.state / "staging") == {} and r["cleanup"]["dir_removed"]
    entries = taly.audit(project.state / "staging")
    assert [(a["what"], a["outcome"]) for a in entries] == [("data.refresh.start", "started"), ("data.refresh", "ok")]
    raw = (project.state / "staging" / "audit.log").read_text()
    assert target.password not in raw and local.endpoints["postgres"]["primary"]["password"] not in raw
    no_personal_data_in(raw, originals)


def test_a_second_refresh_gives_identical_anonymised_data(local, source, target, project, refresh, taly):
    _, manifest = source
    # A session on the target database is terminated by the swap.
    session = psycopg.connect(target.conninfo("taly_staging"), autocommit=True)
    session.execute("SELECT 1")
    result = refresh("--from", "local", "--to", "staging", "--anonymize", "--backup", manifest["backup_id"], "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert taly.json(result)["previous_database"] == "taly_staging_before_refresh"
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    # The previous database is now the first refresh: every row of every table is the same.
    first = sample_data.fingerprint(target.conninfo("taly_staging_before_refresh"))
    second = sample_data.fingerprint(target.conninfo("taly_staging"))
    assert first == second
    with psycopg.connect(target.conninfo("taly_staging"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE email LIKE '%@example.invalid'").fetchone()[0] > 1000


def test_prod_to_dev_takes_whole_tenants_and_what_they_reference(local, source, target, project, refresh, taly,
                                                                 estate_db):
    originals, manifest = source
    result = refresh("--from", "prod", "--to", "dev", "--anonymize", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    r = taly.json(result)
    assert r["from"] == "prod" and r["backup_id"] == manifest["backup_id"]  # the latest of the bucket
    s = r["subset"]
    cross = originals["cross"]
    # 2 tenants chosen; a third is referenced (the agency editor's), with only the rows referenced.
    assert (s["percent"], s["tenants_total"], s["tenants_kept"], s["tenants_referenced"]) == (10, 20, 2, 1)
    assert s["rows_pulled_in_by_references"] == {"public.tenants": 1, "public.users": 1}
    chosen = sorted(cross["chosen"])
    with psycopg.connect(target.conninfo("taly_dev"), autocommit=True) as conn, \
            psycopg.connect(estate_db.conninfo(local), autocommit=True) as src:
        counts = check_database(conn, originals)
        kept = [row[0] for row in conn.execute("SELECT id FROM tenants ORDER BY id").fetchall()]
        assert kept == sorted(chosen + [cross["editor_tenant"]])
        for t in sample_data.TABLES:
            assert counts[t] < manifest["tables"][f"public.{t}"]["rows"], t  # the subset shrank every table
            assert counts[t] == r["tables"][f"public.{t}"]["rows_after"]
            if t not in ("tenants", "content_revisions"):
                # Every kept row's tenant is kept; rows outside the chosen tenants are only what they reference.
                outside = conn.execute(f"SELECT count(*) FROM {t} WHERE tenant_id <> ALL(%s)", (kept,)).fetchone()[0]
                assert outside == 0, t
                pulled = conn.execute(f"SELECT array_agg(id) FROM {t} WHERE tenant_id <> ALL(%s)", (chosen,)).fetchone()[0]
                assert pulled == ([cross["editor"]] if t == "users" else None), t
                # Whole tenants: every row of a chosen tenant is there.
                want = src.execute(f"SELECT count(*) FROM {t} WHERE tenant_id = ANY(%s)", (chosen,)).fetchone()[0]
                assert counts[t] == want + (1 if t == "users" else 0), t
        revisions = src.execute("SELECT count(*) FROM content_revisions r JOIN content_items c ON c.id = r.content_item_id "
                                "WHERE c.tenant_id = ANY(%s)", (chosen,)).fetchone()[0]
        assert counts["content_revisions"] == revisions
        assert conn.execute("SELECT editor_id FROM content_revisions WHERE id = %s",
                            (pii_rows.BASE_ID + 10_000,)).fetchone()[0] == cross["editor"]
        assert conn.execute("SELECT count(*) FROM users WHERE id > %s", (pii_rows.BASE_ID,)).fetchone()[0] == 5
    # The same backup, percentage and key choose the same tenants again.
    again = taly.json(refresh("--from", "prod", "--to", "dev", "--anonymize", "-o", "json"))
    with psycopg.connect(target.conninfo("taly_dev"), autocommit=True) as conn:
        assert [row[0] for row in conn.execute("SELECT id FROM tenants ORDER BY id").fetchall()] == kept
    assert again["status"] == "ok"


def test_a_target_database_that_does_not_exist_yet_is_created(local, source, target, project, refresh, taly):
    for db in ("taly_dev", "taly_dev_before_refresh"):
        postgres._query(target.conninfo("postgres"), f"DROP DATABASE IF EXISTS {db}")
    result = refresh("--from", "local", "--to", "dev", "--anonymize", "--subset", "50", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    r = taly.json(result)
    assert r["swapped"] and r["previous_database"] is None and r["target"]["existed"] is False
    assert r["subset"]["tenants_kept"] == 10
    assert "taly_dev" in databases(target) and "taly_dev_before_refresh" not in databases(target)
    with psycopg.connect(target.conninfo("taly_dev"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 10 + r["subset"]["tenants_referenced"]


def test_an_incomplete_rules_file_fails_the_scan_and_leaves_the_target(local, source, target, project, tmp_path,
                                                                       refresh, taly):
    originals, _ = source
    rules = (REPO / "runbooks" / "data" / "anonymize.yaml").read_text()
    head, _, rest = rules.partition("  bookings:\n")
    _, _, after_notifications = rest.partition("subset:\n")
    incomplete = tmp_path / "incomplete.yaml"
    # Without bookings, content_revisions, content_items, catalog_items and notifications.
    incomplete.write_text(head + "subset:\n" + after_notifications)
    before = sample_data.fingerprint(target.conninfo("taly_staging"))
    dbs = databases(target)
    audited = len(taly.audit(project.state / "staging"))
    result = refresh("--from", "local", "--to", "staging", "--anonymize", "--rules", incomplete, "-o", "json")
    assert result.exit_code == 1, result.stdout + result.stderr
    r = taly.json(result)
    assert r["status"] == "failed" and not r["swapped"] and not r["pii_scan"]["passed"]
    found = {(f["table"], f["column"], f["pattern"]) for f in r["pii_scan"]["findings"]}
    assert {("public.bookings", "notes", "email"), ("public.bookings", "notes", "phone"),
            ("public.bookings", "notes", "card_number"), ("public.notifications", "payload", "email"),
            ("public.content_revisions", "body", "card_number")} <= found
    notes = next(f for f in r["pii_scan"]["findings"] if f["column"] == "notes" and f["pattern"] == "email")
    assert notes["rows"] == len(originals["ids"]["bookings"]) and 0 < len(notes["row_keys"]) <= 3
    assert all(int(k) > pii_rows.BASE_ID for k in notes["row_keys"])
    assert r["pii_scan"]["target"] is None  # stopped in the scratch copy
    assert "personal data remains in" in r["error"] and "the target was not touched" in r["error"]
    no_personal_data_in(result.stdout + result.stderr, originals)
    table = refresh("--from", "local", "--to", "staging", "--anonymize", "--rules", incomplete, env={"COLUMNS": "200"})
    assert table.exit_code == 1 and "personal data found" in table.stdout and "values are never shown" in table.stdout
    no_personal_data_in(table.stdout + table.stderr, originals)
    # The target is as it was; nothing left behind.
    assert sample_data.fingerprint(target.conninfo("taly_staging")) == before
    assert databases(target) == dbs
    assert taly.drill_registry(project.state / "staging") == {}
    assert not [p for p in (project.state / "staging" / "drills").iterdir() if p.name.startswith("refresh-")]
    entries = taly.audit(project.state / "staging")[audited:]
    assert [(a["what"], a["outcome"]) for a in entries][-1] == ("data.refresh", "failed")
    no_personal_data_in((project.state / "staging" / "audit.log").read_text(), originals)


def test_a_finding_on_the_target_drops_the_new_database_and_leaves_the_old(local, source, target, project, monkeypatch,
                                                                           refresh, taly):
    """The scan of the new database on the target is the last gate: made to find something, nothing is swapped."""
    from taly_ops.datarefresh import pii

    real = pii.scan
    scanned = []

    def scan(conn, schema, domain, progress=lambda s: None):
        result = real(conn, schema, domain, progress)
        scanned.append(conn.info.dbname)
        if "_refresh_" in conn.info.dbname:
            result = {**result, "passed": False, "findings": [{"table": "public.users", "column": "email",
                                                               "pattern": "email", "rows": 1, "matches": 1,
                                                               "row_keys": ["1"], "key_columns": ["id"]}]}
        return result

    monkeypatch.setattr(pii, "scan", scan)
    before = sample_data.fingerprint(target.conninfo("taly_staging"))
    dbs = databases(target)
    result = refresh("--from", "local", "--to", "staging", "--anonymize", "-o", "json")
    assert result.exit_code == 1, result.stdout + result.stderr
    r = taly.json(result)
    assert len(scanned) == 2 and "_refresh_" in scanned[1]
    assert r["pii_scan"]["scratch"]["passed"] and not r["pii_scan"]["target"]["passed"] and not r["swapped"]
    assert "on the target; it was dropped" in r["error"] and r["cleanup"]["new_database_dropped"] is True
    assert sample_data.fingerprint(target.conninfo("taly_staging")) == before and databases(target) == dbs


def test_without_anonymize_a_source_with_personal_data_fails_the_scan(local, source, target, project, tmp_path,
                                                                      refresh, taly):
    originals, _ = source
    before = sample_data.fingerprint(target.conninfo("taly_staging"))
    # The local estate is prod's database here (contracts/prod.json points at it): no copy without --anonymize.
    refused = refresh("--from", "local", "--to", "staging", "-o", "json")
    assert refused.exit_code == 2 and "is prod's" in refused.stderr and "--anonymize" in refused.stderr, refused.stderr
    # Without a prod contract, nothing says so: the copy is made, and the scan stops it.
    other = tmp_path / "no-prod"
    shutil.copytree(project.root, other, ignore=shutil.ignore_patterns("state"))
    (other / "contracts" / "prod.json").unlink()
    result = refresh("--from", "local", "--to", "staging", "-o", "json", env={"TALY_PROJECT_ROOT": str(other)})
    assert result.exit_code == 1, result.stdout + result.stderr
    r = taly.json(result)
    assert not r["anonymized"] and r["anonymization"] == [] and not r["swapped"]
    found = {(f["table"], f["column"]) for f in r["pii_scan"]["findings"]}
    assert {("public.users", "email"), ("public.users", "phone"), ("public.notifications", "payload")} <= found
    no_personal_data_in(result.stdout + result.stderr, originals)
    assert sample_data.fingerprint(target.conninfo("taly_staging")) == before


def test_rules_that_do_not_fit_the_backup_are_exit_2_before_anything(local, source, project, tmp_path, refresh, taly):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntables:\n  users:\n    columns:\n      emial: fake_email\n")
    audited = len(taly.audit(project.state / "staging"))
    result = refresh("--from", "local", "--to", "staging", "--anonymize", "--rules", str(bad))
    assert result.exit_code == 2, result.stdout + result.stderr
    assert f"{bad} does not fit the backup's schema: tables.users.columns.emial: no column emial" in result.stderr
    assert len(taly.audit(project.state / "staging")) == audited and taly.drill_registry(project.state / "staging") == {}


def test_refusals_and_unknowns(local, source, target, project, tmp_path, refresh, make_contract, estate_db):
    for args, code, expect in [
        (("--from", "local", "--to", "prod", "--anonymize"), 2, "refusing to refresh into prod"),
        (("--from", "prod", "--to", "staging"), 2, "must anonymise: add --anonymize"),
        (("--from", "local", "--to", "staging", "--anonymize", "--backup", "19990101T000000Z-000000"), 2,
         "unknown backup id 19990101T000000Z-000000"),
    ]:
        result = refresh(*args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        assert expect in result.stderr, result.stderr
    # A target whose primary is the source's: dev described as the local estate itself.
    other = tmp_path / "project"
    shutil.copytree(project.root, other, ignore=shutil.ignore_patterns("state"))
    make_contract.write(other, make_contract.from_estate(local, "dev"))
    result = refresh("--from", "local", "--to", "dev", "--anonymize", env={"TALY_PROJECT_ROOT": str(other)})
    assert result.exit_code == 2 and "is an endpoint of local; refusing" in result.stderr, result.stderr
    # staging's contract copied from prod's (it points at prod's servers): refused whatever the source.
    copied = tmp_path / "copied"
    shutil.copytree(project.root, copied, ignore=shutil.ignore_patterns("state"))
    make_contract.write(copied, make_contract.from_estate(local, "staging"))  # prod.json is the estate's, as prod
    before = databases_on_local(estate_db, local)
    result = refresh("--from", "dev", "--to", "staging", "--anonymize", env={"TALY_PROJECT_ROOT": str(copied)})
    assert result.exit_code == 2 and "is an endpoint of prod (contracts/prod.json)" in result.stderr, result.stderr
    assert databases_on_local(estate_db, local) == before
    # A source whose backups bucket is not there: exit 3.
    make_contract.write(other, make_contract.from_estate(local, "prod", buckets={"backups": "no-such-bucket"}))
    result = refresh("--from", "prod", "--to", "staging", "--anonymize", env={"TALY_PROJECT_ROOT": str(other)})
    assert result.exit_code == 3 and "no-such-bucket" in result.stderr, result.stderr


def test_sigterm_during_a_refresh_cleans_up_and_leaves_the_target(local, source, target, project, taly,
                                                                  wait_for_scratch):
    before = sample_data.fingerprint(target.conninfo("taly_staging"))
    dbs = databases(target)
    env = {**os.environ, **project.env}
    proc = subprocess.Popen(taly.held("restore_scratch", 30, "data", "refresh", "--from", "local", "--to", "staging",
                                      "--anonymize", "--state-dir", local.state_dir, "-o", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        entry = wait_for_scratch(proc, lambda: taly.drill_registry(project.state / "staging"), timeout=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert entry["drill_id"].startswith("refresh-") and not supervisor.alive(entry["pid"], entry["start_time"])
    assert not Path(entry["dir"]).exists() and taly.drill_registry(project.state / "staging") == {}
    assert sample_data.fingerprint(target.conninfo("taly_staging")) == before and databases(target) == dbs
    assert taly.audit(project.state / "staging")[-1]["outcome"] == "interrupted"


def test_drill_reap_removes_what_a_killed_refresh_left(local, source, target, project, taly, wait_for_scratch):
    env = {**os.environ, **project.env}
    proc = subprocess.Popen(taly.held("restore_scratch", 30, "data", "refresh", "--from", "local", "--to", "staging",
                                      "--anonymize", "--state-dir", local.state_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        entry = wait_for_scratch(proc, lambda: taly.drill_registry(project.state / "staging"), timeout=60)
        proc.kill()  # no cleanup at all
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert supervisor.alive(entry["pid"], entry["start_time"]) and Path(entry["dir"]).exists()
    reaped = taly("drill", "reap", "--env", "staging", "-o", "json", env=project.env)
    assert reaped.exit_code == 0, reaped.stderr
    assert [r["drill_id"] for r in taly.json(reaped)["reaped"]] == [entry["drill_id"]]
    assert not supervisor.alive(entry["pid"], entry["start_time"]) and not Path(entry["dir"]).exists()
    assert taly.drill_registry(project.state / "staging") == {}


def test_a_backup_file_that_does_not_match_its_manifest_stops_the_refresh(local, source, target, project, refresh,
                                                                         taly, backups):
    """Takes a new backup (the latest) and corrupts it in the bucket; removes it at the end."""
    m = backups.create(local)
    try:
        before = sample_data.fingerprint(target.conninfo("taly_staging"))
        data_file = next(f["path"] for f in m["files"] if f["path"].endswith(".dat.gz") and f["size"] > 1000)
        backups.flip_byte(local, f"backups/{m['backup_id']}/dump/{data_file}")
        result = refresh("--from", "local", "--to", "staging", "--anonymize", "--backup", m["backup_id"], "-o", "json")
        assert result.exit_code == 1, result.stdout + result.stderr
        r = taly.json(result)
        assert f"{data_file} (sha256 mismatch)" in r["error"] and "nothing was restored" in r["error"]
        assert r["cleanup"]["dir_removed"] and taly.drill_registry(project.state / "staging") == {}
        backups.flip_byte(local, f"backups/{m['backup_id']}/dump/toc.dat")
        result = refresh("--from", "local", "--to", "staging", "--anonymize", "--backup", m["backup_id"], "--dry-run")
        assert result.exit_code == 1 and "toc.dat sha256 mismatch; the backup cannot be trusted" in result.stderr
        assert sample_data.fingerprint(target.conninfo("taly_staging")) == before
    finally:
        backups.remove(local, m["backup_id"])
