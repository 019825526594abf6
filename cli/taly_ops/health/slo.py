"""Service-level objectives from Prometheus (prometheus-api-client): error rate, p95 and p99 latency,
replication lag and pod restarts on the seeds' thresholds, and whether every scrape target is up.

The queries are the alert rules' expressions (platform/taly_platform/alerts/taly.rules.yaml), worst
series first. A query that returns no data is `unknown`, never `ok` (no traffic is not good traffic);
Prometheus unreachable is `unknown` for every check. Locally the Prometheus is the estate's; in the
cloud it is the contract's Amazon Managed Prometheus workspace, queried with SigV4.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..adapters import prometheus as prometheus_adapter
from ..environment import Environment
from .model import Probe, Recorder
from .thresholds import Limit, Thresholds

C = "slo"
REQUIRES = prometheus_adapter.REQUIRES  # imported by the operation before the clocks start


@dataclass(frozen=True)
class Objective:
    name: str
    query: str
    limit: Callable[[Thresholds], Limit]
    unit: str
    scale: float = 1.0          # observed value * scale is what the limit is in
    by: str = "service"         # the label naming the worst series


OBJECTIVES: tuple[Objective, ...] = (
    Objective("error rate",
              'sum by (service) (rate(http_requests_total{status=~"5.."}[5m])) '
              '/ sum by (service) (rate(http_requests_total[5m]))',
              lambda th: th.slo.error_rate_percent, " %", scale=100.0),
    Objective("latency p95",
              "histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))",
              lambda th: th.slo.latency_p95_seconds, " s"),
    Objective("latency p99",
              "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))",
              lambda th: th.slo.latency_p99_seconds, " s"),
    Objective("replication lag", "max by (instance) (pg_replication_lag or pg_replication_lag_seconds)",
              lambda th: th.slo.replication_lag_seconds, " s", by="instance"),
    Objective("pod restarts (1h)", "sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[1h]))",
              lambda th: th.slo.pod_restarts_last_hour, "", by="pod"),
)


def probes(target: Environment, th: Thresholds) -> list[Probe]:
    t = th.timeouts.slo
    out = [Probe(C, o.name, partial(objective, target, o, th, t), timeout=t) for o in OBJECTIVES]
    out.append(Probe(C, "scrape targets up", partial(scrape_targets, target, t), timeout=t))
    return out




def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _query(target: Environment, query: str, timeout: float) -> tuple[str, list[dict] | None, str | None]:
    """(url, result or None, error or None)."""
    url = "?"
    try:
        prom = target.prometheus()
        url = prom.url
        return url, prom.query(query, timeout), None
    except Exception as exc:  # noqa: BLE001 - unreachable or a bad answer: unknown, with the reason
        return url, None, _error(exc)


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def objective(target: Environment, o: Objective, th: Thresholds, timeout: float):
    rec = Recorder(C)
    lim = o.limit(th)
    url, result, error = _query(target, o.query, timeout)
    evidence = f"{url}/api/v1/query?query={o.query}"
    if error is not None:
        rec.add(o.name, "unknown", "Prometheus unreachable", lim.describe(o.unit), f"{evidence}: {error}")
        return rec.results
    values = []
    for series in result or []:
        try:
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if value == value:  # NaN: a ratio over no traffic
            values.append((value * o.scale, series.get("metric", {}).get(o.by, "?")))
    if not values:
        rec.add(o.name, "unknown", "no data", lim.describe(o.unit), f"{evidence} -> no series")
        return rec.results
    worst = max(values)
    rec.add(o.name, lim.grade(worst[0]), f"{_num(worst[0])}{o.unit} ({o.by} {worst[1]})", lim.describe(o.unit),
            f"{evidence} -> {len(values)} series, worst {o.by}={worst[1]}")
    return rec.results


def scrape_targets(target: Environment, timeout: float):
    rec = Recorder(C)
    url, result, error = _query(target, "up", timeout)
    evidence = f"{url}/api/v1/query?query=up"
    if error is not None:
        rec.add("scrape targets up", "unknown", "Prometheus unreachable", "all up", f"{evidence}: {error}")
        return rec.results
    if not result:
        rec.add("scrape targets up", "unknown", "no data", "all up", f"{evidence} -> no series")
        return rec.results
    down = sorted({s["metric"].get("job", "?") + "@" + s["metric"].get("instance", "?")
                   for s in result if s.get("value", [0, "0"])[1] != "1"})
    rec.add("scrape targets up", "warn" if down else "ok", f"{len(result) - len(down)} of {len(result)} up", "all up",
            f"{evidence} -> " + (f"down: {', '.join(down)}" if down else
                                 "up: " + ", ".join(sorted({s['metric'].get('job', '?') for s in result}))))
    return rec.results
