"""Health thresholds: the seeds' numbers as defaults, overridable from `health.yaml` or `--thresholds FILE`.

A limit grades an observed number: above `warn` is warn, above `fail` is fail (for limits marked
lower_is_worse, such as transaction-id headroom, below). Either bound may be absent. The file holds
any subset of the sections below, for example:

    postgres:
      connections_percent: {warn: 70, fail: 90}
    rabbitmq:
      dead_letters: {warn: 0, fail: 500}
    timeouts:
      redis: 2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import BadInput
from .model import Status

FILE_NAME = "health.yaml"
MiB = 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Model):
    """Above `warn` is warn, above `fail` is fail; either bound may be null (absent)."""

    lower_is_worse: ClassVar[bool] = False
    warn: float | None = None
    fail: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Limit":
        if self.warn is not None and self.fail is not None:
            if (self.fail > self.warn) if self.lower_is_worse else (self.fail < self.warn):
                raise ValueError(f"fail must be {'below' if self.lower_is_worse else 'above'} warn")
        return self

    def grade(self, value: float | None) -> Status:
        if value is None:
            return "unknown"

        def beyond(bound: float | None) -> bool:
            return bound is not None and (value < bound if self.lower_is_worse else value > bound)

        if beyond(self.fail):
            return "fail"
        if beyond(self.warn):
            return "warn"
        return "ok"

    def describe(self, unit: str = "", scale: float = 1.0) -> str:
        """"warn >80 %, fail >95 %": bounds divided by `scale` for display, `unit` appended as given."""
        op = "<" if self.lower_is_worse else ">"
        parts = [f"{word} {op}{_num(bound / scale)}{unit}"
                 for word, bound in (("warn", self.warn), ("fail", self.fail)) if bound is not None]
        return ", ".join(parts) or "none"


class Floor(Limit):
    """Below `warn` is warn, below `fail` is fail (headroom: lower is worse)."""

    lower_is_worse: ClassVar[bool] = True


def _num(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.3g}"


def limit(warn: float | None = None, fail: float | None = None, floor: bool = False):
    cls = Floor if floor else Limit
    return Field(default_factory=lambda: cls(warn=warn, fail=fail))


class PostgresThresholds(_Model):
    replication_lag_seconds: Limit = limit(fail=10)              # seeds: replica > 10 s behind pages
    replication_lag_bytes: Limit = limit(warn=256 * MiB)
    connections_percent: Limit = limit(warn=80, fail=95)          # of max_connections
    oldest_transaction_seconds: Limit = limit(warn=300, fail=3600)
    xid_headroom_percent: Floor = limit(warn=50, fail=25, floor=True)  # of the 2^31 wraparound horizon


class RedisThresholds(_Model):
    memory_percent: Limit = limit(warn=90, fail=98)               # used_memory of maxmemory; seeds: 90 %
    replica_lag_bytes: Limit = limit(warn=1 * MiB, fail=64 * MiB)
    evicted_keys: Limit = limit(warn=0)                           # since the server started
    rejected_connections: Limit = limit(warn=0)


class RabbitMQThresholds(_Model):
    queue_depth: Limit = limit(warn=1000, fail=10000)             # ready messages in a work queue
    dead_letters: Limit = limit(warn=0, fail=100)                 # messages in a *.dlq
    consumers_required: bool = True                               # a work queue without consumers warns


class KubernetesThresholds(_Model):
    restarts_last_hour: Limit = limit(warn=2, fail=10)            # seeds: > 2 restarts in 15 min warns


class SloThresholds(_Model):
    error_rate_percent: Limit = limit(warn=1, fail=5)
    latency_p95_seconds: Limit = limit(warn=0.5)
    latency_p99_seconds: Limit = limit(fail=3)
    replication_lag_seconds: Limit = limit(fail=10)
    pod_restarts_last_hour: Limit = limit(warn=2, fail=10)


Seconds = Annotated[float, Field(gt=0, le=120)]


class Timeouts(_Model):
    """Each probe's own timeout, in seconds (it includes connecting)."""

    postgres: Seconds = 3.0
    redis: Seconds = 3.0
    rabbitmq: Seconds = 3.0
    s3: Seconds = 6.0
    aws: Seconds = 6.0
    kubernetes: Seconds = 6.0
    slo: Seconds = 4.0

    def of(self, component: str) -> float:
        return float(getattr(self, component))


class Thresholds(_Model):
    postgres: PostgresThresholds = PostgresThresholds()
    redis: RedisThresholds = RedisThresholds()
    rabbitmq: RabbitMQThresholds = RabbitMQThresholds()
    kubernetes: KubernetesThresholds = KubernetesThresholds()
    slo: SloThresholds = SloThresholds()
    timeouts: Timeouts = Timeouts()

    def with_timeout(self, seconds: float | None) -> "Thresholds":
        """Every component's timeout set to `seconds` (the --timeout option)."""
        if seconds is None:
            return self
        if not 0 < seconds <= 120:
            raise BadInput(f"--timeout must be between 0 and 120 seconds, not {seconds}")
        return self.model_copy(update={"timeouts": Timeouts(**{k: seconds for k in Timeouts.model_fields})})


def load(path: Path | None, project_root: Path | None) -> tuple[Thresholds, Path | None]:
    """--thresholds FILE (must exist), else health.yaml in the project root if present, else defaults."""
    if path is None:
        candidate = project_root / FILE_NAME if project_root else None
        if candidate is None or not candidate.is_file():
            return Thresholds(), None
        path = candidate
    from taly_platform.safe_yaml import YamlError, load_file

    try:
        data = load_file(path)
    except YamlError as exc:
        raise BadInput(f"cannot read thresholds file {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of sections ({', '.join(Thresholds.model_fields)})")
    try:
        return Thresholds.model_validate(_merge(Thresholds().model_dump(), data)), path
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a known setting"
        raise BadInput(f"{path}: {where}: {msg}", hint=f"sections: {', '.join(Thresholds.model_fields)}") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`, mapping by mapping: a file names only what it changes."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out
