"""The shape of a database the refresh needs: tables, columns and types, keys, unique sets, foreign keys.

Read either from a live database's catalog (`from_connection`) or from a backup without restoring it
(`from_dump_sql`: the DDL `pg_restore --schema-only -f -` prints from the dump's table of contents),
so the rules file can be checked against the backup before anything starts. Both give the same model
(a test compares them); types are PostgreSQL's format_type() spelling, which is what pg_dump prints.

A column whose type is a DOMAIN is classed by the type the domain is over (a domain over a domain
followed to its end): a domain over text, varchar, char or citext is text, over json or jsonb is json,
so the scan reads it and the rules may anonymise it. citext, an extension type, is text; pg_dump
qualifies it (`public.citext`), a live catalog may not.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

TEXT_TYPES = ("text", "character varying", "character", "citext", "name", "bpchar", "varchar")
JSON_TYPES = ("json", "jsonb")
EXTENSION_TEXT_TYPES = ("citext",)  # text types an extension adds: matched whatever schema qualifies them


@dataclass
class Column:
    name: str
    type: str  # format_type(): "text", "character varying(255)", "character(4)", "jsonb", "text[]", ...
    nullable: bool
    # When `type` is a domain: format_type() of the type it is over, domains over domains followed to the
    # end ("character varying(20)", "citext", "jsonb"); None when `type` is not a domain.
    domain_base: str | None = None

    @property
    def storage_type(self) -> str:
        """The type the values really have: the domain's base type, else the column's type."""
        return self.domain_base or self.type

    @property
    def base_type(self) -> str:
        return self.storage_type.split("(", 1)[0].strip()

    @property
    def kind(self) -> str:
        """text, json, array (of anything: scanned as text) or other; a domain is classed by its base type."""
        if self.storage_type.endswith("[]"):
            return "array"
        base = self.base_type
        if base in TEXT_TYPES or _EXTENSION_TEXT.fullmatch(base):
            return "text"
        if base in JSON_TYPES:
            return "json"
        return "other"

    @property
    def max_length(self) -> int | None:
        t = self.storage_type
        m = re.match(r"^(?:character varying|character|varchar|bpchar)\((\d+)\)$", t)
        if m:
            return int(m.group(1))
        return 1 if t == "character" else None


# `citext`, `public.citext`, `"my schema".citext`: format_type() qualifies a type not on the search path.
_EXTENSION_TEXT = re.compile(r"(?:.*\.)?(?:" + "|".join(EXTENSION_TEXT_TYPES) + ")")


@dataclass
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "no action"  # no action | restrict | cascade | set null | set default


@dataclass
class Table:
    name: str  # schema.table, unquoted
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    unique: list[tuple[str, ...]] = field(default_factory=list)  # unique constraints and unique indexes

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def bare(self) -> str:
        return self.name.split(".", 1)[1]

    def is_unique(self, column: str) -> bool:
        return (column,) in self.unique or self.primary_key == (column,)


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        """By `schema.table`, or by bare name in `public`."""
        return self.tables.get(name if "." in name else f"public.{name}")

    def to_json(self) -> dict[str, Any]:
        return {"tables": {n: {"columns": [asdict(c) for c in t.columns.values()], "primary_key": list(t.primary_key),
                               "unique": sorted(list(u) for u in t.unique)}
                           for n, t in sorted(self.tables.items())},
                "foreign_keys": sorted(({**asdict(fk), "columns": list(fk.columns), "ref_columns": list(fk.ref_columns)}
                                        for fk in self.foreign_keys), key=lambda f: (f["table"], f["name"]))}

    def text_columns(self) -> list[tuple[Table, Column]]:
        """Every column the scanner reads: text, varchar, char, citext, json, jsonb, arrays, and domains over them."""
        return [(t, c) for _, t in sorted(self.tables.items()) for c in t.columns.values()
                if c.kind in ("text", "json", "array")]


# --- from a live database ---------------------------------------------------------------------------------

_SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"
_ON_DELETE = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def from_connection(conn) -> Schema:
    s = Schema()
    # Every domain: its base type's oid and format_type() (with the domain's typmod: varchar(20)).
    domains = {oid: (base, spelled) for oid, base, spelled in conn.execute(
        "SELECT oid, typbasetype, format_type(typbasetype, typtypmod) FROM pg_type WHERE typtype = 'd'").fetchall()}
    rows = conn.execute(f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, a.atttypid
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN {_SYSTEM} AND n.nspname NOT LIKE 'pg_temp%'
          AND NOT c.relispartition
        ORDER BY n.nspname, c.relname, a.attnum""").fetchall()
    for nsp, rel, col, typ, nullable, typid in rows:
        t = s.tables.setdefault(f"{nsp}.{rel}", Table(f"{nsp}.{rel}"))
        t.columns[col] = Column(col, typ, bool(nullable), _domain_base(domains, typid))
    cons = conn.execute(f"""
        SELECT k.conname, k.contype::text, n.nspname || '.' || c.relname,
               ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
               rn.nspname || '.' || r.relname,
               ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i),
               k.confdeltype::text
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class r ON r.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE k.contype IN ('p', 'u', 'f') AND n.nspname NOT IN {_SYSTEM}
        ORDER BY 3, 1""").fetchall()
    for name, kind, table, cols, ref, ref_cols, deltype in cons:
        t = s.tables.get(table)
        if t is None:
            continue
        if kind == "p":
            t.primary_key = tuple(cols)
        elif kind == "u":
            t.unique.append(tuple(cols))
        else:
            s.foreign_keys.append(ForeignKey(name, table, tuple(cols), ref, tuple(ref_cols),
                                             _ON_DELETE.get(deltype, "no action")))
    # Unique indexes that are not constraints, on plain columns, without a predicate.
    idx = conn.execute(f"""
        SELECT n.nspname || '.' || c.relname,
               ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY u(n, o)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.n ORDER BY u.o)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.indisunique AND NOT i.indisprimary AND i.indpred IS NULL AND 0 <> ALL (i.indkey)
          AND n.nspname NOT IN {_SYSTEM}
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""").fetchall()
    for table, cols in idx:
        if table in s.tables and tuple(cols) not in s.tables[table].unique:
            s.tables[table].unique.append(tuple(cols))
    return s


def _domain_base(domains: dict, key) -> str | None:
    """The type at the end of a chain of domains (None when `key` is not a domain); a cycle stops the walk."""
    spelled, seen = None, set()
    while key in domains and key not in seen:
        seen.add(key)
        key, spelled = domains[key]
    return spelled


# --- from pg_dump's DDL -----------------------------------------------------------------------------------

_ID = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QNAME = rf"({_ID})\.({_ID})"
_CREATE = re.compile(rf"^CREATE (?:UNLOGGED )?TABLE {_QNAME} \($(.*?)^\);$", re.M | re.S)
_ALTER = re.compile(rf"^ALTER TABLE ONLY {_QNAME}\s+ADD CONSTRAINT ({_ID}) (.*?);$", re.M | re.S)
_UNIQUE_INDEX = re.compile(rf"^CREATE UNIQUE INDEX {_ID} ON {_QNAME} USING \w+ \(([^()]*)\);$", re.M)
_COLUMN_END = re.compile(r" (?:COLLATE|DEFAULT|NOT NULL|NULL|GENERATED|CONSTRAINT|CHECK)\b")
# pg_dump: `CREATE DOMAIN public.short AS character varying(20) COLLATE ... NOT NULL DEFAULT ...`, its
# constraints on the next lines. Names and types are spelled as in column definitions (schema-qualified).
_DOMAIN = re.compile(rf"^CREATE DOMAIN ({_QNAME}) AS ([^\n]*?);?$", re.M)


def _unquote(ident: str) -> str:
    ident = ident.strip()
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def _cols(text: str) -> tuple[str, ...]:
    return tuple(_unquote(m) for m in re.findall(_ID, text))


def from_dump_sql(sql: str) -> Schema:
    """The schema from `pg_restore --schema-only -f -` output of a plain pg_dump of one database."""
    s = Schema()
    domains: dict[str, tuple[str, str]] = {}
    for m in _DOMAIN.finditer(sql):
        rest = m.group(4)
        end = _COLUMN_END.search(rest)
        base = (rest[:end.start()] if end else rest).strip()
        domains[m.group(1)] = (base, base)
    for m in _CREATE.finditer(sql):
        name = f"{_unquote(m.group(1))}.{_unquote(m.group(2))}"
        t = s.tables.setdefault(name, Table(name))
        for line in m.group(3).splitlines():
            line = line.strip().rstrip(",")
            if not line or line.startswith("CONSTRAINT "):
                continue
            cm = re.match(rf"({_ID}) (.*)$", line)
            if not cm:
                continue
            rest = cm.group(2)
            end = _COLUMN_END.search(rest)
            typ = (rest[:end.start()] if end else rest).strip()
            t.columns[_unquote(cm.group(1))] = Column(_unquote(cm.group(1)), typ, "NOT NULL" not in rest,
                                                      _domain_base(domains, typ))
    for m in _ALTER.finditer(sql):
        table = f"{_unquote(m.group(1))}.{_unquote(m.group(2))}"
        cname, body = _unquote(m.group(3)), " ".join(m.group(4).split())
        t = s.tables.get(table)
        if t is None:
            continue
        if pk := re.match(r"^PRIMARY KEY \(([^)]*)\)", body):
            t.primary_key = _cols(pk.group(1))
        elif uq := re.match(r"^UNIQUE (?:NULLS NOT DISTINCT )?\(([^)]*)\)", body):
            t.unique.append(_cols(uq.group(1)))
        elif fk := re.match(rf"^FOREIGN KEY \(([^)]*)\) REFERENCES {_QNAME}\(([^)]*)\)(.*)$", body):
            on_delete = re.search(r"ON DELETE (NO ACTION|RESTRICT|CASCADE|SET NULL|SET DEFAULT)", fk.group(5))
            s.foreign_keys.append(ForeignKey(cname, table, _cols(fk.group(1)),
                                             f"{_unquote(fk.group(2))}.{_unquote(fk.group(3))}", _cols(fk.group(4)),
                                             on_delete.group(1).lower() if on_delete else "no action"))
    for m in _UNIQUE_INDEX.finditer(sql):
        table = f"{_unquote(m.group(1))}.{_unquote(m.group(2))}"
        parts = [p.strip() for p in m.group(3).split(",")]
        if table in s.tables and all(re.fullmatch(_ID, p) for p in parts):
            cols = tuple(_unquote(p) for p in parts)
            if cols not in s.tables[table].unique:
                s.tables[table].unique.append(cols)
    return s


def from_dump_dir(dump_dir) -> Schema:
    """Run pg_restore --schema-only on a -Fd dump directory (only its toc.dat is read)."""
    import subprocess

    from ..adapters.postgres import bin_dir
    from ..errors import BadInput

    try:
        done = subprocess.run([str(bin_dir() / "pg_restore"), "--schema-only", "-f", "-", str(dump_dir)],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = f"took longer than {exc.timeout:.0f}s" if isinstance(exc, subprocess.TimeoutExpired) else \
            f"cannot run {bin_dir() / 'pg_restore'}: {exc.strerror or exc}"
        raise BadInput(f"cannot read the backup's schema: {why}",
                       hint="apt-get install postgresql-15, or set TALY_PG_BIN to its bin directory") from None
    if done.returncode != 0:
        raise BadInput(f"cannot read the backup's schema: pg_restore --schema-only exited with {done.returncode}: "
                       + " ".join(done.stderr.strip().splitlines()[-2:]))
    return from_dump_sql(done.stdout)
