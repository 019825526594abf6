"""A consistent subset: whole tenants, and every row their rows reference.

PERCENT of the root table's rows (the tenants) are chosen by the md5 of their key, so the same
database and percentage always keep the same tenants. A table with the tenant column keeps the rows of
the chosen tenants; a table without it (content_revisions) keeps the rows whose owner row (the foreign
key named in the rules, or the one candidate) is kept. Then the closure: every row a kept row
references through any foreign key is kept too, even when it belongs to another tenant, until nothing
changes; so every foreign key still holds. Everything else of the tenant-scoped tables is deleted;
tables with no path to a tenant are kept whole. Rows whose tenant column (or owner key) is NULL belong
to no tenant and are kept.

Runs on the scratch instance as its superuser (session_replication_role = replica: no foreign-key
triggers fire while rows go, the closure has made them unnecessary, and `foreign_key_violations`
checks every key afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BadInput
from .rules import SubsetRules, qualify, tenants_to_keep
from .schema import ForeignKey, Schema

Progress = Callable[[str], None]
SELECTION_SALT = "taly-subset:"


@dataclass
class SubsetPlan:
    root: str
    direct: dict[str, str] = field(default_factory=dict)          # table -> its tenant column
    owned: dict[str, ForeignKey] = field(default_factory=dict)    # table -> the key to its owner row (dependency order)
    edges: list[ForeignKey] = field(default_factory=list)         # foreign keys among tenant-scoped tables
    whole: list[str] = field(default_factory=list)                # tables kept whole

    @property
    def scoped(self) -> list[str]:
        return [self.root, *self.direct, *self.owned]

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "by_tenant_column": dict(self.direct),
                "by_owner": {t: f"{','.join(fk.columns)} -> {fk.ref_table}" for t, fk in self.owned.items()},
                "kept_whole": list(self.whole)}


def plan(schema: Schema, rules: SubsetRules) -> SubsetPlan:
    """Which tables belong to tenants and how; BadInput when the schema leaves it ambiguous."""
    root = schema.table(rules.root)
    if root is None or len(root.primary_key) != 1:
        raise BadInput(f"subset.root: {qualify(rules.root)} must exist and have a single-column primary key")
    p = SubsetPlan(root.name)
    for name, t in sorted(schema.tables.items()):
        if name != root.name and rules.tenant_column in t.columns:
            p.direct[name] = rules.tenant_column
    owners = {qualify(t): c for t, c in rules.owners.items()}
    while True:
        scoped = set(p.scoped)
        added = False
        for name in sorted(schema.tables):
            if name in scoped:
                continue
            fks = [fk for fk in schema.foreign_keys
                   if fk.table == name and fk.ref_table in scoped and fk.ref_table != name]
            if not fks:
                continue
            if name in owners:
                chosen = [fk for fk in fks if fk.columns == (owners[name],)]
                if not chosen:
                    raise BadInput(f"subset.owners.{name}: {owners[name]} is not a foreign key from {name} to a "
                                   f"tenant's table (candidates: {_names(fks)})")
            elif len(fks) == 1:
                chosen = fks
            else:
                chosen = [fk for fk in fks if fk.on_delete == "cascade"]
            if len(chosen) != 1:
                raise BadInput(f"subset: {name} has no {rules.tenant_column} and several foreign keys to tenants' "
                               f"tables ({_names(fks)}); name the one to its owner in subset.owners")
            p.owned[name] = chosen[0]
            added = True
            break  # rescan: the next table may hang off this one
        if not added:
            break
    scoped = set(p.scoped)
    for name in p.scoped:
        if len(schema.tables[name].primary_key) != 1:
            raise BadInput(f"subset: {name} belongs to tenants but has no single-column primary key")
    p.edges = [fk for fk in schema.foreign_keys if fk.table in scoped and fk.ref_table in scoped]
    p.whole = sorted(set(schema.tables) - scoped)
    return p


def _names(fks: list[ForeignKey]) -> str:
    return ", ".join(f"{','.join(fk.columns)} -> {fk.ref_table}" for fk in fks)


def _id(name: str):
    from ..adapters.postgres import sql

    schema_, _, table = name.partition(".")
    return sql.Identifier(schema_, table)


def _cols(prefix: str, cols: tuple[str, ...]):
    from ..adapters.postgres import sql

    return sql.SQL(", ").join(sql.Identifier(prefix, c) for c in cols)


def apply(conn, schema: Schema, p: SubsetPlan, percent: float, progress: Progress = lambda s: None) -> dict[str, Any]:
    """Delete everything outside the subset; returns tenants and rows before/after per table."""
    from ..adapters.postgres import sql

    keep = {t: sql.Identifier(f"_taly_keep_{i}") for i, t in enumerate(p.scoped)}
    pk = {t: sql.Identifier(schema.tables[t].primary_key[0]) for t in p.scoped}
    before = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_id(t))).fetchone()[0]
              for t in sorted(schema.tables)}
    total = before[p.root]
    chosen = tenants_to_keep(total, percent)
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for t in p.scoped:
            conn.execute(sql.SQL("CREATE TEMP TABLE {k} ON COMMIT DROP AS SELECT {pk} AS k FROM {t} WHERE false")
                         .format(k=keep[t], pk=pk[t], t=_id(t)))
            conn.execute(sql.SQL("ALTER TABLE {k} ADD PRIMARY KEY (k)").format(k=keep[t]))
        conn.execute(sql.SQL("INSERT INTO {k} SELECT {pk} FROM {t} ORDER BY md5({salt} || {pk}::text), {pk} LIMIT {n}")
                     .format(k=keep[p.root], pk=pk[p.root], t=_id(p.root), salt=sql.Literal(SELECTION_SALT),
                             n=sql.Literal(chosen)))
        for t, col in p.direct.items():
            conn.execute(sql.SQL("INSERT INTO {k} SELECT {pk} FROM {t} x WHERE x.{c} IS NULL OR x.{c} IN (SELECT k FROM {kr})")
                         .format(k=keep[t], pk=pk[t], t=_id(t), c=sql.Identifier(col), kr=keep[p.root]))
        for t, fk in p.owned.items():
            nulls = sql.SQL(" OR ").join(sql.SQL("x.{} IS NULL").format(sql.Identifier(c)) for c in fk.columns)
            conn.execute(sql.SQL("INSERT INTO {k} SELECT x.{pk} FROM {t} x WHERE {nulls} OR ({xc}) IN "
                                 "(SELECT {oc} FROM {o} o JOIN {ko} ko ON ko.k = o.{opk})")
                         .format(k=keep[t], pk=pk[t], t=_id(t), nulls=nulls, xc=_cols("x", fk.columns),
                                 oc=_cols("o", fk.ref_columns), o=_id(fk.ref_table), ko=keep[fk.ref_table],
                                 opk=pk[fk.ref_table]))
        seeded = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(keep[t])).fetchone()[0] for t in p.scoped}
        rounds = 0
        while True:  # the closure: what kept rows reference is kept
            rounds += 1
            added = 0
            for fk in p.edges:
                notnull = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns)
                cur = conn.execute(
                    sql.SQL("INSERT INTO {kp} SELECT x.{ppk} FROM {pt} x WHERE ({xr}) IN "
                            "(SELECT {cc} FROM {ct} c JOIN {kc} kc ON kc.k = c.{cpk} WHERE {notnull}) "
                            "ON CONFLICT DO NOTHING")
                    .format(kp=keep[fk.ref_table], ppk=pk[fk.ref_table], pt=_id(fk.ref_table),
                            xr=_cols("x", fk.ref_columns), cc=_cols("c", fk.columns), ct=_id(fk.table),
                            kc=keep[fk.table], cpk=pk[fk.table], notnull=notnull))
                added += cur.rowcount
            if not added:
                break
        kept_tenants = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(keep[p.root])).fetchone()[0]
        for t in reversed(p.scoped):
            cur = conn.execute(sql.SQL("DELETE FROM {t} x WHERE NOT EXISTS (SELECT 1 FROM {k} k WHERE k.k = x.{pk})")
                               .format(t=_id(t), k=keep[t], pk=pk[t]))
            progress(f"  subset: {t}: {before[t] - cur.rowcount:,} of {before[t]:,} rows kept")
    after = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_id(t))).fetchone()[0]
             for t in sorted(schema.tables)}
    return {"percent": percent, "tenants_total": total, "tenants_kept": chosen,
            "tenants_referenced": kept_tenants - chosen, "closure_rounds": rounds,
            "rows_pulled_in_by_references": {t: n for t, n in
                                             ((t, after[t] - seeded[t]) for t in p.scoped) if n > 0},
            "plan": p.to_json(),
            "tables": {t: {"rows_before": before[t], "rows_after": after[t]} for t in sorted(schema.tables)}}


def foreign_key_violations(conn, schema: Schema) -> list[dict[str, Any]]:
    """Every foreign key, with the number of rows whose reference finds nothing."""
    from ..adapters.postgres import sql

    out = []
    for fk in schema.foreign_keys:
        notnull = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns)
        match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(r), sql.Identifier(c))
                                      for c, r in zip(fk.columns, fk.ref_columns))
        n = conn.execute(sql.SQL("SELECT count(*) FROM {c} c WHERE {notnull} AND NOT EXISTS "
                                 "(SELECT 1 FROM {p} p WHERE {match})")
                         .format(c=_id(fk.table), p=_id(fk.ref_table), notnull=notnull, match=match)).fetchone()[0]
        out.append({"foreign_key": fk.name, "table": fk.table, "references": fk.ref_table, "violations": n,
                    "passed": n == 0})
    return out
