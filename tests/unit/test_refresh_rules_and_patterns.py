"""`taly data refresh` pieces that need no servers: the rules file, the patterns and Luhn, the fakes,
the schema parser, the subset plan and the refusals (through the CLI, exit codes and messages)."""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taly_ops.app import app
from taly_ops.datarefresh import fakes, patterns, rules, schema, subset
from taly_ops.errors import BadInput

DUMP_SQL = Path(__file__).parent / "data" / "cms_schema_dump.sql"
KEY = fakes.Key(b"unit-test-key-0123456789abcdef", "test")


@pytest.fixture(scope="module")
def cms() -> schema.Schema:
    return schema.from_dump_sql(DUMP_SQL.read_text())


@pytest.fixture(scope="module")
def default_rules(project_root) -> rules.Rules:
    return rules.load(project_root / rules.DEFAULT_RULES)


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refresh_cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["data", "refresh", *args], env=env)


# --- the rules file --------------------------------------------------------------------------------------

MINIMAL = "version: 1\ntables:\n  users:\n    columns:\n      email: fake_email\n"


@pytest.mark.parametrize("text, expect", [
    ("version: 1\ntables: [\n", "line 3: broken YAML"),
    ("version: 1\ntables:\n  users:\n    columns:\n      email: fake_mail\n",
     "tables.users.columns.email: unknown strategy 'fake_mail'; allowed: fake_email, fake_name, fake_phone"),
    ("version: 1\ntables:\n  users:\n    columns:\n      email: {strategy: hash, prefix: x, colour: red}\n",
     "tables.users.columns.email.colour: unknown key; allowed here: strategy, prefix, length"),
    ("version: 1\ncolour: blue\n" + MINIMAL.split("\n", 1)[1],
     "colour: unknown key; allowed here: version, fake_email_domain, tables, subset"),
    ("version: 2\n" + MINIMAL.split("\n", 1)[1], "version: unsupported version 2; allowed: 1"),
    (MINIMAL + "fake_email_domain: gmail.com\n", "fake_email_domain: 'gmail.com' is not a reserved domain"),
    ("version: 1\ntables:\n  users:\n    columns:\n      email: constant\n", "tables.users.columns.email.value: required"),
    ("version: 1\ntables:\n  users:\n    columns:\n      email: {strategy: constant, value: bob@mail.com}\n",
     "tables.users.columns.email.value: a constant must not itself look like personal data"),
    ("version: 1\ntables:\n  n:\n    columns:\n      p: {strategy: json_scrub, keys: {email: encrypt}}\n",
     "tables.n.columns.p.keys.email: 'encrypt' is not allowed"),
    (MINIMAL + "subset: {default_percent: {prod: 10}}\n", "subset.default_percent.prod: 'prod' is not allowed"),
    (MINIMAL + "subset: {default_percent: {dev: 150}}\n", "subset.default_percent: dev: a percentage in (0, 100]"),
    ("- just a list\n", "expected a mapping with version, tables"),
    ("version: 1\ntables: {}\n", "tables: Dictionary should have at least 1 item"),
])
def test_a_malformed_rules_file_names_the_file_and_the_key(tmp_path, text, expect):
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as err:
        rules.load(path, "my-rules.yaml")
    assert err.value.message.startswith("my-rules.yaml: "), err.value.message
    assert expect in err.value.message, err.value.message


@pytest.mark.parametrize("content, expect", [(b"\x89PNG\r\n\x1a\n\x00\x00\xff", "binary file"),
                                             (b"version: 1\n\xff\xfe", "not UTF-8")])
def test_a_binary_rules_file_is_bad_input_naming_it(tmp_path, content, expect):
    path = tmp_path / "rules.yaml"
    path.write_bytes(content)
    with pytest.raises(BadInput) as err:
        rules.load(path, "my-rules.yaml")
    assert "my-rules.yaml" in err.value.message and expect in err.value.message


@pytest.mark.parametrize("text, expect", [
    ("version: 1\ntables:\n  users:\n    columns:\n      email: fake_mail\n", "unknown strategy 'fake_mail'"),
    ("version: 1\ntables:\n  users:\n    columns:\n      email: {strategy: null, when: always}\n",
     "tables.users.columns.email.when: unknown key"),
    ("version: 1\ntables: [\n", "broken YAML"),
])
def test_the_cli_exits_2_on_a_malformed_rules_file_before_touching_anything(tmp_path, text, expect):
    path = write(tmp_path, text)
    # --state-dir points nowhere: the rules are checked before any environment is resolved.
    result = refresh_cli("--from", "local", "--to", "dev", "--anonymize", "--rules", str(path),
                         "--state-dir", str(tmp_path / "no-estate"))
    assert result.exit_code == 2, result.output
    assert str(path) in result.stderr and expect in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "no-estate").exists()


def test_yaml_null_is_the_null_strategy_and_short_forms_expand(tmp_path):
    r = rules.load(write(tmp_path, "version: 1\ntables:\n  users:\n    columns:\n      phone: null\n      email: fake_email\n"))
    cols = r.tables["users"].columns
    assert cols["phone"].strategy == "null" and cols["email"].strategy == "fake_email"


def test_the_repository_rules_fit_the_cms_schema_and_cover_its_personal_columns(default_rules, cms):
    rules.check(default_rules, cms, "anonymize.yaml")
    ruled = {(rules.qualify(t), c): s.strategy for t, tr in default_rules.tables.items() for c, s in tr.columns.items()}
    assert ruled[("public.users", "email")] == "fake_email"
    assert ruled[("public.users", "full_name")] == "fake_name"
    assert ruled[("public.users", "phone")] == "fake_phone"
    assert ruled[("public.payments", "card_holder")] == "constant"
    assert ruled[("public.payments", "card_last4")] == "constant"
    assert ruled[("public.payments", "provider_ref")] == "hash"
    assert ruled[("public.bookings", "notes")] == "scrub_text"
    assert ruled[("public.content_revisions", "body")] == "scrub_text"
    assert ruled[("public.notifications", "payload")] == "json_scrub"
    assert default_rules.subset.default_percent == {"dev": 10}


@pytest.mark.parametrize("columns, expect", [
    ("  userz:\n    columns:\n      email: fake_email\n", "tables.userz: no table public.userz in the backup (tables: bookings"),
    ("  users:\n    columns:\n      emial: fake_email\n", "tables.users.columns.emial: no column emial in public.users (columns: id"),
    ("  users:\n    columns:\n      full_name: null\n", "null on a NOT NULL column"),
    ("  users:\n    columns:\n      email: fake_name\n", "email is unique in public.users; fake_name would repeat values"),
    ("  notifications:\n    columns:\n      template: json_scrub\n", "json_scrub needs a json or jsonb column; template is text"),
    ("  notifications:\n    columns:\n      payload: scrub_text\n", "needs a text, varchar or char column; payload is jsonb (use json_scrub)"),
    ("  payments:\n    columns:\n      card_last4: {strategy: constant, value: REMOVED}\n",
     "constant writes up to 7 characters; card_last4 is character(4)"),
    ("  users:\n    columns:\n      id: fake_email\n", "fake_email needs a text, varchar or char column; id is bigint"),
])
def test_rules_that_do_not_fit_the_backup_are_bad_input(tmp_path, cms, columns, expect):
    r = rules.load(write(tmp_path, "version: 1\ntables:\n" + columns))
    with pytest.raises(BadInput) as err:
        rules.check(r, cms, "r.yaml")
    assert err.value.message.startswith("r.yaml does not fit the backup's schema: ")
    assert expect in err.value.message, err.value.message


def test_a_foreign_key_over_an_anonymised_column_needs_the_same_rule_on_both_sides():
    ddl = """CREATE TABLE public.accounts (
    email text NOT NULL
);
CREATE TABLE public.logins (
    id bigint NOT NULL,
    account_email text NOT NULL
);
ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (email);
ALTER TABLE ONLY public.logins
    ADD CONSTRAINT logins_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.logins
    ADD CONSTRAINT logins_email_fkey FOREIGN KEY (account_email) REFERENCES public.accounts(email);
"""
    s = schema.from_dump_sql(ddl)
    one_side = rules.Rules.model_validate({"version": 1, "tables": {"accounts": {"columns": {"email": "fake_email"}}}})
    with pytest.raises(BadInput, match="public.logins.account_email references public.accounts.email"):
        rules.check(one_side, s, "r.yaml", subset=False)
    both = rules.Rules.model_validate({"version": 1, "tables": {"accounts": {"columns": {"email": "fake_email"}},
                                                                "logins": {"columns": {"account_email": "fake_email"}}}})
    rules.check(both, s, "r.yaml", subset=False)
    with pytest.raises(BadInput, match="subset.root: no table public.tenants"):
        rules.check(both, s, "r.yaml")


def test_subset_percent_defaults_from_the_rules_and_validates(default_rules):
    assert rules.subset_percent(default_rules, "dev", None) == 10
    assert rules.subset_percent(default_rules, "staging", None) is None
    assert rules.subset_percent(default_rules, "staging", 25) == 25
    assert rules.subset_percent(default_rules, "dev", 100) is None
    with pytest.raises(BadInput, match="--subset must be a percentage"):
        rules.subset_percent(default_rules, "dev", 0)
    assert rules.tenants_to_keep(20, 10) == 2 and rules.tenants_to_keep(20, 1) == 1 and rules.tenants_to_keep(3, 50) == 2


# --- the patterns and Luhn ---------------------------------------------------------------------------------

@pytest.mark.parametrize("number, valid", [
    ("4111111111111111", True), ("5500000000000004", True), ("340000000000009", True), ("4012888888881881", True),
    ("4111111111111112", False), ("1234567812345678", False), ("0", True), ("", False), ("41x1", False),
])
def test_luhn(number, valid):
    assert patterns.luhn(number) is valid


@pytest.mark.parametrize("text, counts", [
    ("paid with 4111 1111 1111 1111 yesterday", {"card_number": 1}),
    ("card 5500-0000-0000-0004.", {"card_number": 1}),
    ("amex 340000000000009", {"card_number": 1}),
    ("order 4111111111111112 (not Luhn-valid)", {}),
    ("call +44 20 7946 0018 or 07911 123456", {"phone": 2}),
    ("US (212) 555-0199 and 555-867-5309", {"phone": 2}),
    ("Paris 06 12 34 56 78, Berlin +49 151 12345678", {"phone": 2}),
    ("mail Alice.Smith+news@mail.example.co.uk now", {"email": 1}),
    ("fake user.abcdefghijklmnopqrst@example.invalid and +44 7700 900123 are allowed", {}),
    ("07700 900123 is the national form of a drama number", {}),
    # Not personal data: ids, hashes, dates, times, references.
    ("sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", {}),
    ("SKU-0001234 N00012345 pi_000004411111111111111abc tenants/3/media/1234567.jpeg", {}),
    ("2024-05-01T10:00:00+01:00, 12:30, 2024-01-01 00:00:00+00", {}),
    ("550e8400-e29b-41d4-a716-446655440000 and 1700000000000 ms", {}),
])
def test_patterns_find_personal_data_and_not_ids(text, counts):
    assert patterns.findings(text) == {"email": 0, "phone": 0, "card_number": 0} | counts


def test_patterns_have_no_capturing_groups_and_compile():
    for name, p in patterns.PATTERNS.items():
        assert re.compile(p).groups == 0, name  # regexp_matches()[1] must be the whole match
    assert re.compile(patterns.JSON_ESCAPE).sub(" ", r'"a\nb\"c\u00e9"') == '"a b c "'


def test_reserved_domains():
    assert patterns.is_reserved_domain("example.invalid") and patterns.is_reserved_domain("fake.test")
    assert not patterns.is_reserved_domain("example.com") and not patterns.is_reserved_domain("invalid")


# --- the fakes ------------------------------------------------------------------------------------------

def test_the_pads_make_an_hmac_and_long_keys_are_hashed():
    for secret in (b"k" * 10, b"k" * 64, b"x" * 100):
        key = fakes.Key(secret, "t")
        ipad, opad = key.pads()
        inner = hashlib.sha256(ipad + b"msg").digest()
        assert hashlib.sha256(opad + inner).hexdigest() == hmac.new(secret, b"msg", hashlib.sha256).hexdigest()


def test_fakes_are_deterministic_keyed_and_in_the_reserved_ranges():
    other = fakes.Key(b"another-key-0123456789abcdef", "test")
    for value in ("Alice@Example.com", " alice@example.com", "bob@x.org"):
        e = fakes.fake_email(KEY, value)
        assert e == fakes.fake_email(KEY, value) != fakes.fake_email(other, value)
        assert e.endswith("@example.invalid") and re.fullmatch(r"user\.[a-p]{20}@example\.invalid", e)
        assert not any(ch.isdigit() for ch in e)
    assert fakes.fake_email(KEY, "Alice@Example.com") == fakes.fake_email(KEY, "alice@example.com ")
    p = fakes.fake_phone(KEY, "+44 20 7946 0018")
    assert p == fakes.fake_phone(KEY, "+44 (20) 7946-0018") and re.fullmatch(r"\+44 7700 900\d{3}", p)
    assert patterns.allowed_phone(p)
    n = fakes.fake_name(KEY, "Alice Fairweather")
    assert n == fakes.fake_name(KEY, "alice fairweather") and n.split()[0] in fakes.FIRST_NAMES
    h = fakes.hash_token(KEY, "pi_123", "anon_", 24)
    assert re.fullmatch(r"anon_[a-p]{24}", h) and h == fakes.hash_token(KEY, "pi_123", "anon_", 24)
    assert fakes.fake_email(KEY, "") == "" and fakes.fake_phone(KEY, None) is None


def test_fake_emails_do_not_collide():
    values = {fakes.fake_email(KEY, f"person{i}@mail.com") for i in range(20000)}
    assert len(values) == 20000


def test_scrub_text_replaces_personal_data_and_keeps_the_rest():
    text = ("Dear team,\nplease call Alice on 07911 123456 or +1 (555) 123-4567, mail ALICE@gmail.com.\n"
            "She paid with 4111 1111 1111 1111 (order 1234).")
    out = fakes.scrub_text(KEY, text)
    assert "Dear team,\nplease call Alice on " in out and "(order 1234)." in out
    assert fakes.fake_email(KEY, "alice@gmail.com") in out
    assert fakes.fake_phone(KEY, "07911 123456") in out and fakes.CARD_REMOVED in out
    assert patterns.findings(out) == {"email": 0, "phone": 0, "card_number": 0}
    assert fakes.scrub_text(KEY, out) == out  # already clean: unchanged
    assert fakes.scrub_text(KEY, "no personal data 2024-01-01") == "no personal data 2024-01-01"


def test_scrub_json_handles_listed_keys_nesting_numbers_and_key_names():
    spec = fakes.JsonSpec({"email": "fake_email", "phone": "fake_phone", "card_number": "remove", "name": "fake_name",
                           "notes": "null"})
    value = {"Email": "bob@mail.com", "card_number": "4111111111111111", "name": "Bob Quince", "notes": "x",
             "nested": [{"text": "ring 07911 123456\nthanks"}, 4012888888881881, 42, True, None],
             "bob@mail.com": "as a key", "phone": 447911123456}
    out = fakes.scrub_json(KEY, value, spec)
    assert "card_number" not in out and out["notes"] is None
    assert out["Email"] == fakes.fake_email(KEY, "bob@mail.com") and out["name"] == fakes.fake_name(KEY, "Bob Quince")
    assert out["phone"] == fakes.fake_phone(KEY, "447911123456")
    assert out["nested"][0]["text"] == f"ring {fakes.fake_phone(KEY, '07911 123456')}\nthanks"
    assert out["nested"][1:] == [fakes.CARD_REMOVED, 42, True, None]
    assert fakes.fake_email(KEY, "bob@mail.com") in out
    assert fakes.scrub_json(KEY, value, spec) == out  # deterministic


def test_the_key_comes_from_the_environment_or_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv(fakes.KEY_ENV, raising=False)
    dry = fakes.load_key(tmp_path, create=False)
    assert "not created" in dry.source and not (tmp_path / fakes.KEY_FILE).exists()
    first = fakes.load_key(tmp_path)
    path = tmp_path / fakes.KEY_FILE
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fakes.load_key(tmp_path).secret == first.secret and "created" not in fakes.load_key(tmp_path).source
    assert first.secret.hex() not in repr(first)
    monkeypatch.setenv(fakes.KEY_ENV, "s" * 32)
    assert fakes.load_key(tmp_path).secret == b"s" * 32
    monkeypatch.setenv(fakes.KEY_ENV, "short")
    with pytest.raises(BadInput, match="too short"):
        fakes.load_key(tmp_path)


@pytest.mark.parametrize("content", ["", "\n", "not-hex\n", "abcd\n"])
def test_an_empty_or_garbled_key_file_is_bad_input_not_a_weak_key(tmp_path, monkeypatch, content):
    monkeypatch.delenv(fakes.KEY_ENV, raising=False)
    path = tmp_path / fakes.KEY_FILE
    path.parent.mkdir(parents=True)
    path.write_text(content)
    for create in (True, False):  # a refresh and a dry run
        with pytest.raises(BadInput, match="anonymisation key file .* is unusable"):
            fakes.load_key(tmp_path, create=create)


def test_the_schema_of_a_backup_without_pg_restore_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("TALY_PG_BIN", str(tmp_path / "no-bin"))
    with pytest.raises(BadInput, match="cannot read the backup's schema: cannot run .*pg_restore"):
        schema.from_dump_dir(tmp_path)


def test_a_finding_never_shows_a_row_key_that_is_itself_personal_data():
    """A table keyed by an e-mail address: its findings name the rows by count, not by the address."""
    import contextlib

    from taly_ops.datarefresh import pii

    rows = [("alice@mail.com", "alice@mail.com"), ("bob@mail.com", "bob@mail.com")]

    class Cursor:
        def __init__(self):
            self.itersize = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, query):
            pass

        def __iter__(self):
            return iter(rows)

    class Conn:
        def transaction(self):
            return contextlib.nullcontext()

        def cursor(self, name=None):
            return Cursor()

    s = schema.Schema(tables={"public.subscribers": schema.Table(
        "public.subscribers", columns={"email": schema.Column("email", "text", False)}, primary_key=("email",))})
    result = pii.scan(Conn(), s)
    (finding,) = result["findings"]
    assert (finding["table"], finding["column"], finding["pattern"], finding["rows"]) == (
        "public.subscribers", "email", "email", 2)
    assert finding["row_keys"] == [] and "mail.com" not in repr(result)


# --- the schema and the subset plan ----------------------------------------------------------------------

def test_the_dump_parser_reads_tables_keys_and_foreign_keys(cms):
    assert len(cms.tables) == 9
    users = cms.tables["public.users"]
    assert users.primary_key == ("id",) and ("email",) in users.unique
    assert users.columns["phone"].nullable and not users.columns["email"].nullable
    assert cms.tables["public.payments"].columns["card_last4"].type == "character(4)"
    assert cms.tables["public.payments"].columns["card_last4"].max_length == 4
    assert cms.tables["public.notifications"].columns["payload"].kind == "json"
    fk = next(f for f in cms.foreign_keys if f.name == "content_revisions_content_item_id_fkey")
    assert (fk.table, fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete) == (
        "public.content_revisions", ("content_item_id",), "public.content_items", ("id",), "cascade")
    assert next(f for f in cms.foreign_keys if f.name == "media_content_item_id_fkey").on_delete == "set null"
    assert len(cms.foreign_keys) == 17


def test_the_dump_parser_handles_quoted_identifiers():
    ddl = '''CREATE TABLE "My Schema"."Order" (
    "Id" bigint NOT NULL,
    "e-mail" character varying(80) DEFAULT 'x'::character varying NOT NULL,
    tags text[]
);
ALTER TABLE ONLY "My Schema"."Order"
    ADD CONSTRAINT "Order_pkey" PRIMARY KEY ("Id");
CREATE UNIQUE INDEX order_mail ON "My Schema"."Order" USING btree ("e-mail");
'''
    s = schema.from_dump_sql(ddl)
    t = s.tables["My Schema.Order"]
    assert list(t.columns) == ["Id", "e-mail", "tags"] and t.primary_key == ("Id",)
    assert t.columns["e-mail"].type == "character varying(80)" and t.columns["e-mail"].max_length == 80
    assert t.columns["tags"].kind == "array" and ("e-mail",) in t.unique


def test_the_subset_plan_of_the_cms(cms, default_rules):
    plan = subset.plan(cms, default_rules.subset)
    assert plan.root == "public.tenants"
    assert set(plan.direct) == {"public.users", "public.content_items", "public.media", "public.catalog_items",
                                "public.bookings", "public.payments", "public.notifications"}
    assert set(plan.owned) == {"public.content_revisions"}
    assert plan.owned["public.content_revisions"].columns == ("content_item_id",)
    assert plan.whole == [] and len(plan.edges) == 17


def test_an_ambiguous_owner_must_be_named(cms):
    no_owner = rules.SubsetRules(root="tenants", tenant_column="tenant_id")
    # Without the rules' owners entry, content_revisions' owner is still inferred: its one ON DELETE CASCADE key.
    assert subset.plan(cms, no_owner).owned["public.content_revisions"].columns == ("content_item_id",)
    ddl = """CREATE TABLE public.tenants (
    id bigint NOT NULL
);
CREATE TABLE public.a (
    id bigint NOT NULL,
    tenant_id bigint NOT NULL
);
CREATE TABLE public.link (
    id bigint NOT NULL,
    x bigint NOT NULL,
    y bigint NOT NULL
);
ALTER TABLE ONLY public.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.a
    ADD CONSTRAINT a_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.link
    ADD CONSTRAINT link_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.link
    ADD CONSTRAINT link_x_fkey FOREIGN KEY (x) REFERENCES public.a(id);
ALTER TABLE ONLY public.link
    ADD CONSTRAINT link_y_fkey FOREIGN KEY (y) REFERENCES public.a(id);
"""
    s = schema.from_dump_sql(ddl)
    with pytest.raises(BadInput, match="public.link has no tenant_id and several foreign keys"):
        subset.plan(s, no_owner)
    named = rules.SubsetRules(owners={"link": "y"})
    assert subset.plan(s, named).owned["public.link"].columns == ("y",)


# --- the refusals ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["--from", "staging", "--to", "prod", "--anonymize"], "refusing to refresh into prod"),
    (["--from", "local", "--to", "prod"], "refusing to refresh into prod"),
    (["--from", "prod", "--to", "staging"], "a refresh from prod must anonymise: add --anonymize"),
    (["--from", "dev", "--to", "dev", "--anonymize"], "--from and --to are both dev"),
    (["--from", "qa", "--to", "dev"], "--from: unknown environment 'qa'"),
])
def test_refusals_are_exit_2_before_anything_is_resolved(tmp_path, args, expect):
    # The project root has no contracts: anything resolved would fail differently.
    (tmp_path / "Pulumi.yaml").write_text("name: taly\n")
    result = refresh_cli(*args, env={"TALY_PROJECT_ROOT": str(tmp_path), "TALY_STATE_DIR": str(tmp_path / "state")})
    assert result.exit_code == 2, result.output
    assert expect in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_bad_subset_percentage_is_exit_2(tmp_path):
    result = refresh_cli("--from", "local", "--to", "dev", "--subset", "150", "--state-dir", str(tmp_path / "x"))
    assert result.exit_code == 2 and "--subset must be a percentage in (0, 100]" in result.stderr


def test_data_is_registered_and_documented():
    result = CliRunner().invoke(app, ["data", "refresh", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for word in ("--anonymize", "--subset", "--rules", "--backup", "--dry-run", "--output", "_before_refresh",
                 "Refused (exit 2)"):
        assert word in result.stdout, word


def test_the_new_database_name_fits_postgresql():
    from taly_ops.operations import refresh as ops

    name = ops._db_name("taly", "refresh-20260301T101500Z-4f2a1c")
    assert name == "taly_refresh_20260301t101500z_4f2a1c"
    long = ops._db_name("d" * 80, "refresh-20260301T101500Z-4f2a1c")
    assert len(long.encode()) == 63 and long.endswith("_refresh_20260301t101500z_4f2a1c")


def test_a_huge_bad_value_is_quoted_shortened(tmp_path):
    path = write(tmp_path, "version: [" + ", ".join(["1"] * 20000) + "]\n" + MINIMAL.split("\n", 1)[1])
    with pytest.raises(BadInput) as err:
        rules.load(path, "my-rules.yaml")
    assert err.value.message.startswith("my-rules.yaml: version: unsupported version [1, 1,")
    assert "characters)" in err.value.message and len(err.value.message) < 200
