"""The anonymisation rules file (runbooks/data/anonymize.yaml): its model, its loading, its checks.

Loading validates the file on its own (YAML, known keys, known strategies, sane values); `check`
then validates it against the schema of the backup being refreshed (every table and column exists,
each strategy suits its column's type, nullability, length, uniqueness and foreign keys). Every
problem names the file, the key path and what is allowed, and is exit 2 before anything changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import BadInput
from . import fakes, patterns
from .schema import Schema

DEFAULT_RULES = Path("runbooks") / "data" / "anonymize.yaml"
STRATEGIES = ("fake_email", "fake_name", "fake_phone", "scrub_text", "null", "constant", "hash", "json_scrub")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FakeEmail(_Model):
    """A deterministic, unique address in the fake domain: user.<20 letters>@example.invalid."""
    strategy: Literal["fake_email"]


class FakeName(_Model):
    """A deterministic "First Last" from a fixed list of fictional names."""
    strategy: Literal["fake_name"]


class FakePhone(_Model):
    """A deterministic number in Ofcom's drama range, +44 7700 900000-900999."""
    strategy: Literal["fake_phone"]


class ScrubText(_Model):
    """Free text: e-mails and phones inside it replaced by their fakes, card numbers removed, the rest kept."""
    strategy: Literal["scrub_text"]


class Null(_Model):
    """NULL (the column must be nullable)."""
    strategy: Literal["null"]


class Constant(_Model):
    """The same value in every row."""
    strategy: Literal["constant"]
    value: str

    @field_validator("value")
    @classmethod
    def _no_pii(cls, v: str) -> str:
        if any(patterns.findings(v).values()):
            raise ValueError("a constant must not itself look like personal data (an e-mail, phone or card number)")
        return v


class Hash(_Model):
    """prefix + `length` letters of a keyed hash: unique when the originals are, deterministic."""
    strategy: Literal["hash"]
    prefix: str = Field("", max_length=16, pattern=r"^[A-Za-z0-9_:.-]*$")
    length: int = Field(24, ge=16, le=64)


class JsonScrub(_Model):
    """json/jsonb: listed keys (any depth, any case) by their strategy, every other string scrubbed as scrub_text."""
    strategy: Literal["json_scrub"]
    keys: dict[str, Literal["fake_email", "fake_name", "fake_phone", "scrub_text", "null", "remove"]] = {}
    scrub_strings: bool = True

    @field_validator("keys")
    @classmethod
    def _lower(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.lower(): s for k, s in v.items()}


Strategy = Annotated[Union[FakeEmail, FakeName, FakePhone, ScrubText, Null, Constant, Hash, JsonScrub],
                     Field(discriminator="strategy")]


class TableRules(_Model):
    columns: dict[str, Strategy] = Field(min_length=1)

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        """`email: fake_email` is short for `email: {strategy: fake_email}`."""
        if isinstance(v, dict):
            # `phone: null` (and `strategy: null`) in YAML is None: the null strategy.
            out = {}
            for k, s in v.items():
                if s is None or isinstance(s, str):
                    s = {"strategy": "null" if s is None else s}
                elif isinstance(s, dict) and "strategy" in s and s["strategy"] is None:
                    s = {**s, "strategy": "null"}
                out[k] = s
            return out
        return v


class SubsetRules(_Model):
    root: str = "tenants"
    tenant_column: str = "tenant_id"
    owners: dict[str, str] = {}  # table without the tenant column -> the foreign-key column naming its owner row
    default_percent: dict[Literal["local", "dev", "staging"], float] = {}

    @field_validator("default_percent")
    @classmethod
    def _percent(cls, v: dict[str, float]) -> dict[str, float]:
        for env, p in v.items():
            if not 0 < p <= 100:
                raise ValueError(f"{env}: a percentage in (0, 100], not {p}")
        return v


class Rules(_Model):
    version: Literal[1]
    fake_email_domain: str = patterns.DEFAULT_FAKE_DOMAIN
    tables: dict[str, TableRules] = Field(min_length=1)
    subset: SubsetRules = SubsetRules()

    @field_validator("fake_email_domain")
    @classmethod
    def _reserved(cls, v: str) -> str:
        if not patterns.is_reserved_domain(v):
            raise ValueError(f"'{v}' is not a reserved domain; use one under .{', .'.join(patterns.RESERVED_TLDS)} "
                             "(e.g. example.invalid), so no fake address can reach a real mailbox")
        return v.lower()

    @model_validator(mode="after")
    def _tables_once(self) -> "Rules":
        seen: dict[str, str] = {}
        for name in self.tables:
            q = qualify(name)
            if q in seen:
                raise ValueError(f"tables: '{name}' and '{seen[q]}' are the same table")
            seen[q] = name
        return self


def qualify(table: str) -> str:
    return table if "." in table else f"public.{table}"


# --- loading ------------------------------------------------------------------------------------------------

def load(path: Path, shown: str | None = None) -> Rules:
    """The rules in path; BadInput (exit 2) naming the file, the key path and what is allowed."""
    from taly_platform.safe_yaml import YamlError, load_file

    name = shown or str(path)
    try:
        data = load_file(path, name)
    except YamlError as exc:
        raise BadInput(f"{name}:{f' line {exc.line}:' if exc.line else ''} {exc.problem}",
                       hint=f"the default is {DEFAULT_RULES} in the project root; or pass --rules FILE") from None
    if not isinstance(data, dict):
        raise BadInput(f"{name}: expected a mapping with version, tables (and optionally fake_email_domain, subset), "
                       f"not {type(data).__name__}")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
        raise BadInput(f"{name}: " + "; ".join(lines[:5]) + more,
                       hint=f"the format is documented at the top of {DEFAULT_RULES} and in docs/operations.md") from None


def _describe(err: dict[str, Any]) -> str:
    from taly_platform.quoting import shorten

    path, model = _walk(tuple(step for step in err["loc"] if step != "[key]"))
    where = ".".join(path) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else "?"
        return f"{where}: unknown key; allowed here: {allowed}"
    if kind == "union_tag_invalid":
        return f"{where}: unknown strategy {shorten(repr(err['input'].get('strategy')))}; allowed: {', '.join(STRATEGIES)}"
    if kind == "union_tag_not_found":
        return f"{where}: no strategy; allowed: {', '.join(STRATEGIES)}"
    if kind == "literal_error" and path and path[-1] == "version":
        return f"{where}: unsupported version {shorten(repr(err['input']))}; allowed: 1"
    if kind == "literal_error":
        return f"{where}: {shorten(repr(err['input']))} is not allowed; {err['msg'].replace('Input should be', 'allowed:')}"
    if kind == "missing":
        return f"{where}: required"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def _walk(loc: tuple) -> tuple[list[str], Any]:
    """The loc as a key path (union tags dropped), and the model holding its last key (for 'allowed keys')."""
    node: Any = Rules
    path: list[str] = []
    container: Any = None
    for step in loc:
        ann = node
        while get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        if get_origin(ann) is Union:
            tags = {get_args(m.model_fields["strategy"].annotation)[0]: m for m in get_args(ann)}
            if step in tags:
                node = tags[step]  # a union member's tag: not a key of the file
                continue
        path.append(str(step))
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            container = ann
            node = ann.model_fields[step].annotation if step in ann.model_fields else None
        elif get_origin(ann) is dict:
            container, node = None, get_args(ann)[1]
        else:
            container, node = None, None
    return path, container


# --- against the schema ----------------------------------------------------------------------------------

def output_length(strategy: Any, domain: str) -> int | None:
    """The longest value a strategy writes (None: depends on the input)."""
    match strategy.strategy:
        case "fake_email":
            return len("user.") + fakes.EMAIL_TOKEN + 1 + len(domain)
        case "fake_name":
            return max(len(f) for f in fakes.FIRST_NAMES) + 1 + max(len(l) for l in fakes.LAST_NAMES)
        case "fake_phone":
            return len(patterns.FAKE_PHONE_PREFIX) + 3
        case "hash":
            return len(strategy.prefix) + strategy.length
        case "constant":
            return len(strategy.value)
    return None


def check(rules: Rules, schema: Schema, name: str, *, tables: bool = True, subset: bool = True) -> None:
    """BadInput listing every way the rules do not fit the schema (unknown tables and columns first).

    tables=False (a refresh without --anonymize) skips the tables section, subset=False (no subset
    taken) the subset section.
    """
    problems: list[str] = []
    known = ", ".join(sorted(t.split(".", 1)[1] if t.startswith("public.") else t for t in schema.tables))
    for tname, trules in (rules.tables.items() if tables else ()):
        table = schema.table(tname)
        if table is None:
            problems.append(f"tables.{tname}: no table {qualify(tname)} in the backup (tables: {known})")
            continue
        for cname, strategy in trules.columns.items():
            where = f"tables.{tname}.columns.{cname}"
            col = table.columns.get(cname)
            if col is None:
                problems.append(f"{where}: no column {cname} in {table.name} (columns: {', '.join(table.columns)})")
                continue
            s = strategy.strategy
            if s == "json_scrub" and col.kind != "json":
                problems.append(f"{where}: json_scrub needs a json or jsonb column; {cname} is {col.type}")
            elif s != "json_scrub" and col.kind != "text":
                problems.append(f"{where}: {s} needs a text, varchar or char column; {cname} is {col.type}"
                                + (" (use json_scrub)" if col.kind == "json" else ""))
            if s == "null" and not col.nullable:
                problems.append(f"{where}: null on a NOT NULL column; use constant, or a fake")
            if table.is_unique(cname) and s not in ("fake_email", "hash", "null"):
                problems.append(f"{where}: {cname} is unique in {table.name}; {s} would repeat values: "
                                "use fake_email, hash or null")
            limit, longest = col.max_length, output_length(strategy, rules.fake_email_domain)
            if limit is not None and longest is not None and longest > limit:
                problems.append(f"{where}: {s} writes up to {longest} characters; {cname} is {col.type}")
            if s in ("scrub_text", "json_scrub") and not table.primary_key:
                problems.append(f"{where}: {s} rewrites rows by primary key, and {table.name} has none")
    # A foreign key over an anonymised column must be anonymised the same way on both sides.
    ruled = {(qualify(t), c): s for t, tr in rules.tables.items() for c, s in tr.columns.items()} if tables else {}
    for fk in schema.foreign_keys:
        for col, ref in zip(fk.columns, fk.ref_columns):
            a, b = ruled.get((fk.table, col)), ruled.get((fk.ref_table, ref))
            if (a or b) and a != b:
                problems.append(f"{fk.table}.{col} references {fk.ref_table}.{ref} (foreign key {fk.name}): both "
                                "need the same fake_email or hash rule, or the references break")
            elif a is not None and a.strategy not in ("fake_email", "hash"):
                problems.append(f"{fk.table}.{col} references {fk.ref_table}.{ref}: only fake_email or hash keep "
                                "a foreign key joining")
    sub = rules.subset
    root = schema.table(sub.root)
    if not subset:
        pass
    elif root is None:
        problems.append(f"subset.root: no table {qualify(sub.root)} in the backup (tables: {known})")
    elif len(root.primary_key) != 1:
        problems.append(f"subset.root: {root.name} needs a single-column primary key to pick tenants by")
    for tname, column in (sub.owners.items() if subset else ()):
        table = schema.table(tname)
        if table is None:
            problems.append(f"subset.owners.{tname}: no table {qualify(tname)} in the backup")
        elif not any(fk.table == table.name and fk.columns == (column,) for fk in schema.foreign_keys):
            problems.append(f"subset.owners.{tname}: {column} is not a single-column foreign key of {table.name}")
    if problems:
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        raise BadInput(f"{name} does not fit the backup's schema: " + "; ".join(problems[:8]) + more)


def subset_percent(rules: Rules, target: str, requested: float | None) -> float | None:
    """The subset to take: --subset, else the rules' default for the target environment, else None (all)."""
    if requested is not None:
        if not 0 < requested <= 100:
            raise BadInput(f"--subset must be a percentage in (0, 100], not {requested:g}")
        return None if requested == 100 else requested
    default = rules.subset.default_percent.get(target)
    return None if default in (None, 100) else default


def tenants_to_keep(total: int, percent: float) -> int:
    return min(total, max(1, math.ceil(total * percent / 100))) if total else 0


def summary(rules: Rules) -> dict[str, Any]:
    """What the rules do, per table and column (no values: a constant's value is not personal data, but shown)."""
    return {qualify(t): {c: s.model_dump(exclude_defaults=False) for c, s in tr.columns.items()}
            for t, tr in rules.tables.items()}
