"""Label and field selectors, parsed and matched as the API server does.

Label selectors (k8s.io/apimachinery/pkg/labels): `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
`a` (exists), `!a` (does not exist), `a>1`/`a<1`; requirements joined by commas, all must hold;
`!=`/`notin` also match objects without the label. Field selectors (pkg/fields): `f=v`, `f==v`,
`f!=v` over the fields each kind supports (metadata.name and metadata.namespace everywhere; pods:
spec.nodeName, status.phase...; events: involvedObject.*, reason, type...); anything else is the
API server's 400 `field label not supported: <field>`. Structured selectors (matchLabels,
matchExpressions) become the same `LabelSelector`, and print as the API server prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from .apierrors import ApiError, bad_request

Obj = dict[str, Any]

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SPECIAL = set("(),!=<>")


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a qualified label key (as upstream words it), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character")
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _NAME.match(value):
        return ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character")
    return None


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        try:
            number = int(value) if present else None
        except (TypeError, ValueError):
            return False
        if number is None:
            return False
        return number > int(self.values[0]) if self.op == "gt" else number < int(self.values[0])

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return "!" + self.key
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a structured selector that selects nothing (never happens for strings)

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: Obj) -> bool:
        return self.matches((obj.get("metadata") or {}).get("labels"))

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SPECIAL:
            two = text[i:i + 2]
            if two in ("==", "!="):
                tokens.append(two)
                i += 2
            else:
                tokens.append(ch)
                i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            tokens.append(text[i:j])
            i = j
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, why: str) -> ApiError:
        return bad_request(f"unable to parse requirement: {why}")

    def identifier(self, what: str) -> str:
        token = self.take()
        if token is None or token in _SPECIAL or token in ("==", "!="):
            raise self.fail(f"found '{token or ''}', expected: {what}")
        return token

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        while self.peek() is not None:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                break
            if token != ",":
                raise self.fail(f"found '{token}', expected: ',' or 'end of string'")
            if self.peek() is None:
                raise self.fail("found '', expected: identifier after ','")
        return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            key = self.check_key(self.identifier("identifier"))
            return Requirement(key, "!")
        key = self.check_key(self.identifier("identifier"))
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.take()
        if op in ("=", "==", "!="):
            value = self.peek()
            if value is None or value == ",":
                value = ""
            else:
                value = self.identifier("identifier")
            return Requirement(key, "!=" if op == "!=" else "=", (self.check_value(value),))
        if op in (">", "<"):
            value = self.identifier("an integer")
            if not re.fullmatch(r"-?\d+", value):
                raise self.fail(f"for 'Gt', 'Lt' operators, the value must be an integer: {value}")
            return Requirement(key, "gt" if op == ">" else "lt", (value,))
        if op in ("in", "notin"):
            return Requirement(key, op, self.value_set())
        raise self.fail(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")

    def value_set(self) -> tuple[str, ...]:
        if self.take() != "(":
            raise self.fail("found '', expected: '('")
        values: list[str] = []
        while True:
            token = self.peek()
            if token in (",", ")"):
                values.append("")
            else:
                values.append(self.check_value(self.identifier("identifier")))
            token = self.take()
            if token == ")":
                return tuple(sorted(set(values)))
            if token != ",":
                raise self.fail(f"found '{token or ''}', expected: ',', ')'")

    def check_key(self, key: str) -> str:
        problem = label_key_problem(key)
        if problem:
            raise self.fail(f'key: Invalid value: "{key}": {problem}')
        return key

    def check_value(self, value: str) -> str:
        problem = label_value_problem(value)
        if problem:
            raise self.fail(f'values[0][{value}]: Invalid value: "{value}": {problem}')
        return value


@lru_cache(maxsize=512)
def parse_label_selector(text: str) -> LabelSelector:
    """A label selector string as `?labelSelector=` carries it; ApiError 400 when it does not parse."""
    if not text or not text.strip():
        return LabelSelector()
    return _Parser(text).parse()


_STRUCTURED_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def from_label_selector(spec: dict[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (matchLabels, matchExpressions). None selects nothing, {} everything."""
    if spec is None:
        return LabelSelector(nothing=True)
    requirements = [Requirement(k, "=", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
    for expression in spec.get("matchExpressions") or []:
        op = _STRUCTURED_OPS.get(expression.get("operator", ""))
        if op is None:
            raise bad_request(f"{expression.get('operator')!r} is not a valid label selector operator")
        values = tuple(sorted(str(v) for v in expression.get("values") or []))
        if op in ("in", "notin") and not values:
            raise bad_request("for 'in', 'notin' operators, values set can't be empty")
        requirements.append(Requirement(expression.get("key", ""), op, values if op in ("in", "notin") else ()))
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def selector_string(spec: dict[str, Any] | None) -> str:
    """The selector as the API server prints it (a Scale's status.selector, kubectl's SELECTOR column)."""
    return str(from_label_selector(spec))


# ---- field selectors ----

def _path(*keys: str) -> Callable[[Obj], str]:
    def read(obj: Obj) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return read


_COMMON = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
FIELDS: dict[str, dict[str, Callable[[Obj], str]]] = {
    "pods": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": _path("spec", "hostNetwork"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "events": {
        **{f"involvedObject.{f}": _path("involvedObject", f) for f in _INVOLVED},
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    "namespaces": {"status.phase": _path("status", "phase")},
    "secrets": {"type": _path("type")},
    "replicasets": {"status.replicas": _path("status", "replicas")},
    "services": {"spec.clusterIP": _path("spec", "clusterIP"), "spec.type": _path("spec", "type")},
}


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[Callable[[Obj], str], bool, str], ...] = ()  # (read, equal?, value)

    def matches_object(self, obj: Obj) -> bool:
        return all((read(obj) == value) == equal for read, equal, value in self.terms)

    def empty(self) -> bool:
        return not self.terms


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if text[i] == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            if value[i + 1] not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: {value[i:i + 2]}")
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def parse_field_selector(plural: str, text: str) -> FieldSelector:
    """A `?fieldSelector=` for this resource; ApiError 400 for bad syntax or an unsupported field."""
    if not text or not text.strip():
        return FieldSelector()
    supported = {**_COMMON, **FIELDS.get(plural, {})}
    terms = []
    for term in _split_unescaped(text, ","):
        for op in ("!=", "==", "="):
            at = term.find(op)
            if at > 0:
                field, value = term[:at].strip(), _unescape(term[at + len(op):])
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        read = supported.get(field)
        if read is None:
            raise bad_request(f"field label not supported: {field}")
        terms.append((read, op != "!=", value))
    return FieldSelector(tuple(terms))
