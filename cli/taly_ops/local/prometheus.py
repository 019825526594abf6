"""Monitoring: the PostgreSQL and Redis exporters, and Prometheus scraping them, RabbitMQ, itself, and the
local cluster's pods.

The pods are found with the targets and labels of Kubernetes discovery (role pod), relabelled as on EKS:
the pods annotated `prometheus.io/scrape: "true"` are kept and scraped at `podIP:prometheus.io/port`,
`prometheus.io/path`. Debian's Prometheus is built without `kubernetes_sd_configs`, so the cluster
serves that discovery over `http_sd_configs` (cluster/podsd.py, with its bearer token file). The
cluster's object metrics (kube-state-metrics' names: restarts, limits) come from the same port.

Everything starts at once, before the servers it watches are ready: the ports are chosen up front,
the exporters report the servers down until they answer, and Prometheus scrapes every 2 seconds.
Passwords reach the exporters through their environment, never a command line.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..adapters.prometheus import Prometheus
from .context import DATABASE, HOST, USER, Context
from .state import Component
from . import supervisor

BINARIES = {"prometheus": "prometheus", "postgres-exporter": "prometheus-postgres-exporter",
            "redis-exporter": "prometheus-redis-exporter"}
SCRAPE_INTERVAL = "2s"
# The cluster's pods and objects: every second, and discovery refreshed every second, so that the SLO checks
# have their two samples a rate needs soon after a pod starts (`taly local up` waits for them).
CLUSTER_SCRAPE_INTERVAL = "1s"


def binary(component: str) -> str | None:
    return os.environ.get(f"TALY_{component.upper().replace('-', '_')}_BIN") or shutil.which(BINARIES[component])


def preflight() -> list[tuple[str, str]]:
    return [(f"{exe} is not installed", f"apt-get install {exe}")
            for component, exe in BINARIES.items() if not binary(component)]


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


RULES_FILE = Path(__file__).resolve().parents[3] / "platform" / "taly_platform" / "alerts" / "taly.rules.yaml"


def pods_job(sd_url: str, token_file: Path) -> dict:
    """The usual prometheus.io/* annotation relabelling over role-pod discovery's targets and labels."""
    meta = "__meta_kubernetes_pod_"
    return {
        "job_name": "kubernetes-pods",
        "scrape_interval": CLUSTER_SCRAPE_INTERVAL, "scrape_timeout": CLUSTER_SCRAPE_INTERVAL,
        "http_sd_configs": [{"url": sd_url, "refresh_interval": CLUSTER_SCRAPE_INTERVAL,
                             "authorization": {"type": "Bearer", "credentials_file": str(token_file)}}],
        "relabel_configs": [
            {"source_labels": [f"{meta}annotation_prometheus_io_scrape"], "action": "keep", "regex": "true"},
            {"source_labels": [f"{meta}annotation_prometheus_io_path"], "action": "replace",
             "target_label": "__metrics_path__", "regex": "(.+)"},
            {"source_labels": ["__address__", f"{meta}annotation_prometheus_io_port"], "action": "replace",
             "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
            {"action": "labelmap", "regex": f"{meta}label_(.+)"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": [f"{meta}name"], "target_label": "pod"},
            {"target_label": "environment", "replacement": "local"},
        ],
    }


def config(ports: dict[str, int], state_dir: Path) -> dict:
    from . import kube

    def job(name: str, port: int, path: str = "/metrics") -> dict:
        return {"job_name": name, "metrics_path": path, "static_configs": [{"targets": [f"{HOST}:{port}"],
                                                                             "labels": {"environment": "local"}}]}

    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL, "evaluation_interval": "15s",
                   "external_labels": {"estate": "taly-local"}},
        # The estate's own alert rules, so the local Prometheus evaluates exactly what AMP will.
        "rule_files": [str(RULES_FILE)],
        "scrape_configs": [
            job("prometheus", ports["prometheus"]),
            job("postgres", ports["postgres-exporter"]),
            job("redis", ports["redis-exporter"]),
            job("rabbitmq", ports["rabbitmq-prometheus"]),
            job("kube-state-metrics", ports["kube-state-metrics"]) | {"scrape_interval": CLUSTER_SCRAPE_INTERVAL,
                                                                     "scrape_timeout": CLUSTER_SCRAPE_INTERVAL},
            pods_job(kube.pod_discovery_url(ports), kube.token_path(state_dir)),
        ],
    }


# pg_replication_lag (the alert rules' and the SLO check's series), which postgres_exporter 0.11 no longer
# builds in: each streaming replica's replay lag in seconds, from the primary (0 once it has caught up and
# PostgreSQL stops reporting a lag); no series without a replica.
EXPORTER_QUERIES = """\
pg_replication:
  query: "SELECT application_name, COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) AS lag FROM pg_stat_replication WHERE state = 'streaming'"
  master: true
  metrics:
    - application_name:
        usage: "LABEL"
        description: "The replica's application_name"
    - lag:
        usage: "GAUGE"
        description: "Replication lag behind the primary in seconds"
"""


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATA_SOURCE", "PG_EXPORTER", "REDIS_"))}


def start(ctx: Context) -> None:
    base = ctx.state_dir / "prometheus"
    base.mkdir(mode=0o700, exist_ok=True)
    (base / "data").mkdir(mode=0o700, exist_ok=True)
    (base / "prometheus.yml").write_text(json.dumps(config(ctx.ports, ctx.state_dir), indent=2) + "\n")  # JSON is YAML
    (base / "postgres-exporter-queries.yaml").write_text(EXPORTER_QUERIES)
    # Exporters first (Prometheus would scrape them at once); they need no server to be up yet.
    _launch(ctx, ("postgres-exporter", "redis-exporter", "prometheus"))


def restart(ctx: Context, dead: set[str]) -> None:
    """Start the stopped ones again, on their ports; Prometheus over its own TSDB (its history kept)."""
    _launch(ctx, tuple(n for n in ("postgres-exporter", "redis-exporter", "prometheus") if n in dead))


def _spawn(ctx: Context, name: str) -> supervisor.Spawned:
    p, base, log = ctx.ports, ctx.state_dir / "prometheus", ctx.log(name)
    if name == "postgres-exporter":
        dsn = f"postgresql://{USER}:{ctx.passwords['postgres']}@{HOST}:{p['postgres-primary']}/{DATABASE}?sslmode=disable"
        spawned = supervisor.spawn([binary(name), f"--web.listen-address={HOST}:{p[name]}",
                                    f"--extend.query-path={base / 'postgres-exporter-queries.yaml'}"],
                                   log=log, env=_base_env() | {"DATA_SOURCE_NAME": dsn}, cwd=base)
        ctx.record(name, spawned, p[name], log, host=HOST, metrics_url=f"{url(p[name])}/metrics",
                   target=f"{HOST}:{p['postgres-primary']}")
    elif name == "redis-exporter":
        spawned = supervisor.spawn(
            [binary(name), "-web.listen-address", f"{HOST}:{p[name]}", "-redis.addr", f"redis://{HOST}:{p['redis-primary']}"],
            log=log, env=_base_env() | {"REDIS_PASSWORD": ctx.passwords["redis"]}, cwd=base)
        ctx.record(name, spawned, p[name], log, host=HOST, metrics_url=f"{url(p[name])}/metrics",
                   target=f"{HOST}:{p['redis-primary']}")
    else:
        spawned = supervisor.spawn(
            [binary(name), f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={base / 'data'}",
             f"--web.listen-address={HOST}:{p[name]}", "--storage.tsdb.retention.time=2d",
             f"--web.external-url={url(p[name])}/", "--log.level=warn"],
            log=log, cwd=base)
        ctx.record(name, spawned, p[name], log, host=HOST, url=url(p[name]))
    return spawned


def _launch(ctx: Context, names: tuple[str, ...]) -> None:
    spawned = {name: _spawn(ctx, name) for name in names}
    for name in ("postgres-exporter", "redis-exporter"):
        if name in spawned:
            port = ctx.ports[name]
            ctx.wait(lambda port=port: supervisor.port_open(port), component=name, what="listening port", timeout=20,
                     log=ctx.log(name), pid=spawned[name].pid)
            ctx.say(name, f"ready on {HOST}:{port}")
    if "prometheus" in spawned:
        ctx.wait(lambda: _ready(ctx.ports["prometheus"]), component="prometheus", what="/-/ready", timeout=30,
                 log=ctx.log("prometheus"), pid=spawned["prometheus"].pid, interval=0.1)
        ctx.say("prometheus", f"ready on {url(ctx.ports['prometheus'])}")


def _ready(port: int) -> bool:
    return Prometheus(url(port)).ready()


def targets(port: int) -> list[dict]:
    """Prometheus's active targets: job, scrape URL, health ("up", "down", "unknown")."""
    return Prometheus(url(port)).targets()


def stop(component: Component) -> bool:
    return supervisor.stop(component.pid, component.start_time, pgid=component.pgid, timeout=10)
