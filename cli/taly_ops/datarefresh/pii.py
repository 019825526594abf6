"""The personal-data scan: every text, varchar, char, citext, json, jsonb and array column of every table
(and every column of a domain over one of those: schema.Column.kind).

PostgreSQL finds the candidates (`regexp_matches` with the patterns of patterns.py; JSON escapes
turned into spaces first) and drops the reserved fake ranges; Python then judges each candidate (8 to
15 digits for a phone, 13 to 19 digits and a valid Luhn digit for a card). The report names table,
column, pattern, how many rows and matches, and at most three row keys (primary-key values). It
never holds a matched value: personal data must not reach the output, the logs or the reports.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from . import patterns
from .schema import Schema

Progress = Callable[[str], None]
SAMPLE_KEYS = 3


def _id(name: str):
    from ..adapters.postgres import sql

    schema_, _, table = name.partition(".")
    return sql.Identifier(schema_, table)


def scan(conn, schema: Schema, domain: str = patterns.DEFAULT_FAKE_DOMAIN,
         progress: Progress = lambda s: None) -> dict[str, Any]:
    """{passed, columns_scanned, findings: [{table, column, pattern, rows, matches, row_keys}], seconds}."""
    from ..adapters.postgres import sql

    from .anonymize import json_unescaped

    t0 = time.monotonic()
    findings: list[dict[str, Any]] = []
    columns = schema.text_columns()
    for table, col in columns:
        ident = sql.Identifier(col.name)
        text = json_unescaped(ident) if col.kind == "json" else sql.SQL("{}::text").format(ident)
        if table.primary_key:
            key = sql.SQL(" || ',' || ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in table.primary_key)
        else:
            key = sql.SQL("ctid::text")
        for name, pattern in patterns.PATTERNS.items():
            allow = sql.SQL("")
            if name == "email":
                allow = sql.SQL("WHERE right(lower(m[1]), {n}) <> {suffix}").format(
                    n=sql.Literal(len(domain) + 1), suffix=sql.Literal("@" + domain.lower()))
            elif name == "phone":
                allow = sql.SQL("WHERE regexp_replace(m[1], '[^0-9]', '', 'g') !~ {}").format(
                    sql.Literal(patterns.ALLOWED_PHONE_DIGITS))
            query = sql.SQL("SELECT x.k, m[1] FROM (SELECT {key} AS k, {text} AS v FROM {t} WHERE {text} ~ {p}) x, "
                            "regexp_matches(x.v, {p}, 'g') m {allow}").format(
                key=key, text=text, t=_id(table.name), p=sql.Literal(pattern), allow=allow)
            rows: set[str] = set()
            sample: list[str] = []
            matches = 0
            with conn.transaction():
                with conn.cursor(name="taly_pii_scan") as cur:
                    cur.itersize = 5000
                    cur.execute(query)
                    for k, found in cur:
                        if not _counts(name, found, domain):
                            continue
                        matches += 1
                        if k not in rows:
                            rows.add(k)
                            # A key that itself looks like personal data (a text key holding an address) is not shown.
                            if len(sample) < SAMPLE_KEYS and not any(patterns.findings(k, domain).values()):
                                sample.append(k)
            if matches:
                findings.append({"table": table.name, "column": col.name, "pattern": name, "rows": len(rows),
                                 "matches": matches, "row_keys": sample,
                                 "key_columns": list(table.primary_key) or ["ctid"]})
    seconds = round(time.monotonic() - t0, 2)
    progress(f"  PII scan: {len(columns)} columns, " +
             (f"{len(findings)} findings in {', '.join(sorted({f['table'] + '.' + f['column'] for f in findings}))}"
              if findings else "nothing found") + f" ({seconds:.1f}s)")
    return {"passed": not findings, "columns_scanned": len(columns), "findings": findings, "seconds": seconds}


def _counts(pattern: str, found: str, domain: str) -> bool:
    if pattern == "email":
        return not patterns.allowed_email(found, domain)
    if pattern == "phone":
        return patterns.is_phone(found) and not patterns.allowed_phone(found)
    return patterns.is_card(found)
