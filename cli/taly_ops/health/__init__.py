"""Health checks, one module per component: postgres, redis, rabbitmq, s3, aws (control plane),
kube (Kubernetes) and slo (Prometheus). Each module's `probes(target, thresholds)` returns the probes
the operation (taly_ops.operations.health) runs concurrently. The checks talk to systems through
the environment's adapters, never a client library (`scripts/import-graph --check` enforces it).
"""

from __future__ import annotations

# component name -> module in this package
MODULES: dict[str, str] = {
    "postgres": "postgres", "redis": "redis", "rabbitmq": "rabbitmq", "s3": "s3", "aws": "aws",
    "kubernetes": "kube", "slo": "slo",
}
