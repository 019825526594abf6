"""Columns typed by a DOMAIN (over text, varchar, char, citext, jsonb; a domain over a domain) and
citext columns are text and JSON to the refresh: the PII scan reads them, the rules may anonymise
them, and the schema read from a backup classes them as the live catalog does.

A database of the module's own on the session's second PostgreSQL (conftest.py `postgres_server`: the
drills' scratch launcher), dropped after the module.
"""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest
from psycopg.types.json import Jsonb

from taly_ops.datarefresh import anonymize, fakes, pii, rules as rules_mod, schema as schema_mod
from taly_ops.local import postgres

pytestmark = pytest.mark.integration

DDL = """
CREATE EXTENSION citext;
CREATE SCHEMA "Odd Schema";
CREATE DOMAIN email_address AS citext CHECK (VALUE ~ '@');
CREATE DOMAIN phone_number AS varchar(40) COLLATE "C" NOT NULL DEFAULT '' CONSTRAINT phone_chars CHECK (VALUE !~ '[a-z]');
CREATE DOMAIN plain_note AS text;
CREATE DOMAIN "Odd Schema"."Note" AS plain_note;
CREATE DOMAIN card_text AS character(19);
CREATE DOMAIN payload AS jsonb;
CREATE DOMAIN counter AS integer;
CREATE TABLE people (
    id integer PRIMARY KEY,
    email email_address,
    nick citext,
    phone phone_number,
    note "Odd Schema"."Note",
    card card_text,
    payload payload,
    visits counter
);
"""
EMAIL, NICK, PHONE = "Alice.Fairweather@gmail.com", "bob.quince@yahoo.co.uk", "+44 20 7946 0018"
NOTE, CARD = "call 07911 123456 or write to dmitri@volkonsky.ru", "4111 1111 1111 1111"
PAYLOAD = {"contact": {"email": "c_okafor@mail.example.org", "phone": "555-867-5309"}}
PII_COLUMNS = {"email", "nick", "phone", "note", "card", "payload"}
DB, ANON = "pii_domains", "pii_domains_anon"


@pytest.fixture(scope="module")
def server(postgres_server):
    """A database of the module's own on the session's second PostgreSQL (conftest.py); dropped after it."""
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {DB}")
    info = postgres_server.conninfo(DB)
    try:
        with psycopg.connect(info, autocommit=True) as conn:
            conn.execute(DDL)
            conn.execute("INSERT INTO people VALUES (1, %s, %s, %s, %s, %s, %s, 7), (2, 'x@example.invalid', 'nobody', "
                         "'', 'nothing here', NULL, '{}', 1)", (EMAIL, NICK, PHONE, NOTE, CARD, Jsonb(PAYLOAD)))
        yield {"conninfo": info, "port": postgres_server.port, "password": postgres_server.password}
    finally:
        with psycopg.connect(postgres_server.conninfo(), autocommit=True) as admin:
            for db in (DB, ANON):
                admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def findings(conn) -> set[tuple[str, str]]:
    report = pii.scan(conn, schema_mod.from_connection(conn))
    return {(f["column"], f["pattern"]) for f in report["findings"]}


def test_personal_data_in_domain_and_citext_columns_is_found_by_the_scan(server):
    with psycopg.connect(server["conninfo"], autocommit=True) as conn:
        schema = schema_mod.from_connection(conn)
        cols = schema.tables["public.people"].columns
        assert {n: c.kind for n, c in cols.items()} == {
            "id": "other", "email": "text", "nick": "text", "phone": "text", "note": "text", "card": "text",
            "payload": "json", "visits": "other"}
        # The domain over a domain resolves to the end; a domain's typmod is its base type's.
        assert cols["note"].type == '"Odd Schema"."Note"' and cols["note"].domain_base == "text"
        assert cols["phone"].domain_base == "character varying(40)" and cols["phone"].max_length == 40
        assert cols["card"].max_length == 19 and cols["nick"].domain_base is None
        assert {c.name for _, c in schema.text_columns()} == PII_COLUMNS

        report = pii.scan(conn, schema)
        assert report["passed"] is False and report["columns_scanned"] == len(PII_COLUMNS)
        assert {(f["column"], f["pattern"]) for f in report["findings"]} == {
            ("email", "email"), ("nick", "email"), ("phone", "phone"), ("note", "phone"), ("note", "email"),
            ("card", "card_number"), ("payload", "email"), ("payload", "phone")}
        assert all(f["row_keys"] == ["1"] for f in report["findings"])


def test_the_backups_schema_classes_domains_like_the_live_one_and_rules_on_them_anonymise(server, postgres_server,
                                                                                         tmp_path):
    env = {**os.environ, "PGPASSWORD": server["password"]}
    conn_args = ["-h", "127.0.0.1", "-p", str(server["port"]), "-U", "taly"]
    dump = tmp_path / "dump"
    subprocess.run([str(postgres.bin_dir() / "pg_dump"), *conn_args, "-d", DB, "-Fd", "-f", str(dump)],
                   check=True, capture_output=True, env=env)
    backup = schema_mod.from_dump_dir(dump)
    from_backup = backup.tables["public.people"].columns
    with psycopg.connect(server["conninfo"], autocommit=True) as conn:
        cols = schema_mod.from_connection(conn).tables["public.people"].columns
        conn.execute(f"CREATE DATABASE {ANON}")
    # pg_dump qualifies every type (public.email_address, public.citext); the classes and lengths agree.
    assert from_backup["email"].type == "public.email_address" and from_backup["nick"].type == "public.citext"
    assert {n: (c.kind, c.max_length) for n, c in from_backup.items()} == \
        {n: (c.kind, c.max_length) for n, c in cols.items()}
    assert from_backup["note"].domain_base == "text" and from_backup["phone"].domain_base == "character varying(40)"

    # Rules naming the domain columns pass the check against the backup, and anonymise a restored copy clean.
    rules = rules_mod.Rules.model_validate({"version": 1, "tables": {"people": {"columns": {
        "email": "fake_email", "nick": "fake_email", "phone": "fake_phone", "note": "scrub_text", "card": None,
        "payload": {"strategy": "json_scrub"}}}}})
    rules_mod.check(rules, backup, "test rules", subset=False)
    subprocess.run([str(postgres.bin_dir() / "pg_restore"), *conn_args, "-d", ANON, str(dump)],
                   check=True, capture_output=True, env=env)
    with psycopg.connect(postgres_server.conninfo(ANON), autocommit=True) as conn:
        assert ("email", "email") in findings(conn)
        anonymize.apply(conn, schema_mod.from_connection(conn), rules, fakes.Key(b"k" * 32, "test"))
        assert findings(conn) == set()
        email, typ = conn.execute("SELECT email::text, pg_typeof(email)::text FROM people WHERE id = 1").fetchone()
        assert typ == "email_address" and email.endswith("@example.invalid")
