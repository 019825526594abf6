"""Apply the rules to a database (the scratch instance): every ruled column rewritten, in place.

Value strategies (fake_email, fake_name, fake_phone, hash, constant, null) run as one UPDATE per table
inside PostgreSQL, with session-local functions (pg_temp: never part of a dump) that compute the same
HMAC as fakes.py from the key's pads, passed as query parameters (so the key is in no statement text
and no server log). Text strategies (scrub_text, json_scrub) read only the rows whose text the
patterns match (or, for JSON, that hold a listed key), rewrite them in Python and write them back by
primary key through COPY.

Errors carry PostgreSQL's primary message only: its DETAIL can quote a row.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from . import fakes, patterns
from .rules import Rules, qualify
from .schema import Schema

Progress = Callable[[str], None]
BATCH = 5000

_FUNCTIONS = [
    """CREATE FUNCTION pg_temp.taly_hex(v text, ipad bytea, opad bytea) RETURNS text LANGUAGE sql IMMUTABLE
       AS $$ SELECT encode(sha256(opad || sha256(ipad || convert_to(v, 'UTF8'))), 'hex') $$""",
    """CREATE FUNCTION pg_temp.taly_letters(h text, n int) RETURNS text LANGUAGE sql IMMUTABLE
       AS $$ SELECT translate(substr(h, 1, n), '0123456789abcdef', 'abcdefghijklmnop') $$""",
    """CREATE FUNCTION pg_temp.taly_norm(v text) RETURNS text LANGUAGE sql IMMUTABLE
       AS $$ SELECT translate(btrim(v, ' '), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') $$""",
    """CREATE FUNCTION pg_temp.taly_fake_email(v text, ipad bytea, opad bytea, domain text) RETURNS text
       LANGUAGE sql IMMUTABLE AS $$
       SELECT CASE WHEN v IS NULL OR v = '' THEN v ELSE
         'user.' || pg_temp.taly_letters(pg_temp.taly_hex('email:' || pg_temp.taly_norm(v), ipad, opad), %d)
         || '@' || domain END $$""" % fakes.EMAIL_TOKEN,
    """CREATE FUNCTION pg_temp.taly_fake_name(v text, ipad bytea, opad bytea, first text[], last text[]) RETURNS text
       LANGUAGE sql IMMUTABLE AS $$
       SELECT CASE WHEN v IS NULL OR v = '' THEN v ELSE
         first[1 + ('x' || substr(h, 1, 7))::bit(28)::int % array_length(first, 1)] || ' ' ||
         last[1 + ('x' || substr(h, 8, 7))::bit(28)::int % array_length(last, 1)] END
       FROM (SELECT pg_temp.taly_hex('name:' || pg_temp.taly_norm(v), ipad, opad) AS h) x $$""",
    """CREATE FUNCTION pg_temp.taly_fake_phone(v text, ipad bytea, opad bytea, prefix text) RETURNS text
       LANGUAGE sql IMMUTABLE AS $$
       SELECT CASE WHEN v IS NULL OR v = '' THEN v ELSE
         prefix || lpad((('x' || substr(pg_temp.taly_hex('phone:' || regexp_replace(v, '[^0-9]', '', 'g'),
                                                           ipad, opad), 1, 7))::bit(28)::int % 1000)::text, 3, '0') END $$""",
    """CREATE FUNCTION pg_temp.taly_hash(v text, ipad bytea, opad bytea, prefix text, n int) RETURNS text
       LANGUAGE sql IMMUTABLE AS $$
       SELECT CASE WHEN v IS NULL THEN v ELSE prefix || pg_temp.taly_letters(pg_temp.taly_hex('hash:' || v, ipad, opad), n) END $$""",
]


class AnonymizeFailed(Exception):
    """A column could not be rewritten (a unique or check constraint, a length); the message names it."""


def pg_message(exc: Exception) -> str:
    """PostgreSQL's primary message (never its DETAIL or CONTEXT, which can quote a row)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    state = getattr(exc, "sqlstate", None)
    return f"{primary or type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")


def install_functions(conn) -> None:
    for sql in _FUNCTIONS:
        conn.execute(sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))


def sql_fake(conn, key: fakes.Key, strategy: str, value: str | None, domain: str = patterns.DEFAULT_FAKE_DOMAIN,
             prefix: str = "", length: int = 24) -> str | None:
    """One value through the SQL functions (for tests comparing them with fakes.py)."""
    install_functions(conn)
    ipad, opad = key.pads()
    calls = {
        "fake_email": ("SELECT pg_temp.taly_fake_email(%s, %s, %s, %s)", (value, ipad, opad, domain)),
        "fake_name": ("SELECT pg_temp.taly_fake_name(%s, %s, %s, %s, %s)",
                      (value, ipad, opad, list(fakes.FIRST_NAMES), list(fakes.LAST_NAMES))),
        "fake_phone": ("SELECT pg_temp.taly_fake_phone(%s, %s, %s, %s)", (value, ipad, opad, patterns.FAKE_PHONE_PREFIX)),
        "hash": ("SELECT pg_temp.taly_hash(%s, %s, %s, %s, %s)", (value, ipad, opad, prefix, length)),
    }
    query, params = calls[strategy]
    return conn.execute(query, params).fetchone()[0]


def _id(name: str):
    from ..adapters.postgres import sql

    schema_, _, table = name.partition(".")
    return sql.Identifier(schema_, table)


def _value_expr(column: str, strategy: Any, params: dict[str, Any]):
    """The SQL expression a value strategy sets the column to."""
    from ..adapters.postgres import sql

    c = sql.SQL("{}::text").format(sql.Identifier(column))
    s = strategy.strategy
    if s == "fake_email":
        return sql.SQL("pg_temp.taly_fake_email({}, %(ipad)s, %(opad)s, %(domain)s)").format(c)
    if s == "fake_name":
        return sql.SQL("pg_temp.taly_fake_name({}, %(ipad)s, %(opad)s, %(first)s, %(last)s)").format(c)
    if s == "fake_phone":
        return sql.SQL("pg_temp.taly_fake_phone({}, %(ipad)s, %(opad)s, %(phone_prefix)s)").format(c)
    if s == "hash":
        return sql.SQL("pg_temp.taly_hash({}, %(ipad)s, %(opad)s, {}, {})").format(
            c, sql.Literal(strategy.prefix), sql.Literal(strategy.length))
    if s == "constant":
        name = f"const_{len(params)}"
        params[name] = strategy.value
        return sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE %({})s END").format(sql.Identifier(column), sql.SQL(name))
    if s == "null":
        return sql.SQL("NULL")
    raise ValueError(s)


def json_unescaped(expr):
    """A json/jsonb column as text with JSON escapes (\\n, \\", \\u00e9) turned into spaces, for the patterns."""
    from ..adapters.postgres import sql

    return sql.SQL("regexp_replace({}::text, {}, ' ', 'g')").format(expr, sql.Literal(patterns.JSON_ESCAPE))


def _key_regex(keys: list[str]) -> str:
    """`"(?:email|phone)":` as a regex both engines read alike (punctuation escaped)."""
    esc = ["".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in k) for k in keys]
    return '"(?:' + "|".join(esc) + ')":'


def apply(conn, schema: Schema, rules: Rules, key: fakes.Key, progress: Progress = lambda s: None) -> list[dict[str, Any]]:
    """Rewrite every ruled column; returns what changed per table and column (counts only)."""
    from ..adapters.postgres import errors as pgerrors
    from ..adapters.postgres import sql

    install_functions(conn)
    ipad, opad = key.pads()
    domain = rules.fake_email_domain
    report: list[dict[str, Any]] = []
    for tname, trules in rules.tables.items():
        table = schema.tables[qualify(tname)]
        value_cols = {c: s for c, s in trules.columns.items() if s.strategy not in ("scrub_text", "json_scrub")}
        text_cols = {c: s for c, s in trules.columns.items() if s.strategy in ("scrub_text", "json_scrub")}
        if value_cols:
            params: dict[str, Any] = {"ipad": ipad, "opad": opad, "domain": domain, "first": list(fakes.FIRST_NAMES),
                                      "last": list(fakes.LAST_NAMES), "phone_prefix": patterns.FAKE_PHONE_PREFIX}
            sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), _value_expr(c, s, params))
                                      for c, s in value_cols.items())
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL session_replication_role = replica")
                    cur = conn.execute(sql.SQL("UPDATE {} SET {}").format(_id(table.name), sets), params)
            except pgerrors.Error as exc:
                raise AnonymizeFailed(f"anonymising {table.name} ({', '.join(value_cols)}) failed: {pg_message(exc)}") from None
            for c, s in value_cols.items():
                report.append({"table": table.name, "column": c, "strategy": s.strategy, "rows_changed": cur.rowcount})
            progress(f"  anonymised {table.name}: {', '.join(f'{c} ({s.strategy})' for c, s in value_cols.items())}, "
                     f"{cur.rowcount:,} rows")
        for c, s in text_cols.items():
            try:
                n = _rewrite(conn, table, c, s, key, domain)
            except pgerrors.Error as exc:
                raise AnonymizeFailed(f"anonymising {table.name}.{c} ({s.strategy}) failed: {pg_message(exc)}") from None
            report.append({"table": table.name, "column": c, "strategy": s.strategy, "rows_changed": n})
            progress(f"  anonymised {table.name}.{c} ({s.strategy}): {n:,} rows rewritten")
    return report


def _rewrite(conn, table, column: str, strategy: Any, key: fakes.Key, domain: str) -> int:
    """scrub_text / json_scrub one column: candidate rows read, changed ones written back by primary key."""
    from ..adapters.postgres import sql

    col = table.columns[column]
    pk = [sql.Identifier(k) for k in table.primary_key]
    ident = sql.Identifier(column)
    is_json = strategy.strategy == "json_scrub"
    text = json_unescaped(ident) if is_json else sql.SQL("{}::text").format(ident)
    conds = [sql.SQL("{} ~ {}").format(text, sql.Literal(p)) for p in patterns.PATTERNS.values()]
    spec = None
    if is_json:
        spec = fakes.JsonSpec(dict(strategy.keys), strategy.scrub_strings)
        if strategy.keys:
            conds.append(sql.SQL("{}::text ~* {}").format(ident, sql.Literal(_key_regex(list(strategy.keys)))))
        if not strategy.scrub_strings:
            conds = conds[len(patterns.PATTERNS):] or [sql.SQL("false")]
    where = sql.SQL(" OR ").join(conds)
    changed = 0
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(sql.SQL("CREATE TEMP TABLE _taly_rewrite ON COMMIT DROP AS SELECT {pk}, ''::text AS v FROM {t} WHERE false")
                     .format(pk=sql.SQL(", ").join(pk), t=_id(table.name)))
        rows_out: list[tuple] = []
        with conn.cursor(name="taly_rewrite") as cur:
            cur.itersize = BATCH
            cur.execute(sql.SQL("SELECT {pk}, {c} FROM {t} WHERE {w}")
                        .format(pk=sql.SQL(", ").join(pk), c=ident, t=_id(table.name), w=where))
            for row in cur:
                old = row[-1]
                if is_json:
                    new = fakes.scrub_json(key, old, spec, domain)
                    if new != old:
                        rows_out.append((*row[:-1], json.dumps(new, ensure_ascii=False)))
                else:
                    new = fakes.scrub_text(key, old, domain)
                    if new != old:
                        rows_out.append((*row[:-1], new))
        if rows_out:
            with conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY _taly_rewrite FROM STDIN")) as copy:
                    for r in rows_out:
                        copy.write_row(r)
            match = sql.SQL(" AND ").join(sql.SQL("x.{k} = n.{k}").format(k=k) for k in pk)
            cur = conn.execute(sql.SQL("UPDATE {t} x SET {c} = n.v::{typ} FROM _taly_rewrite n WHERE {m}")
                               .format(t=_id(table.name), c=ident, typ=sql.SQL(col.type), m=match))
            changed = cur.rowcount
    return changed
