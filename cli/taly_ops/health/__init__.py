"""Health checks, one module per component: postgres, redis, rabbitmq, s3, aws (control plane),
kube (Kubernetes) and slo (Prometheus). Each module's `probes(target, thresholds)` returns the probes
the operation (taly_ops.operations.health) runs concurrently. Heavy clients (psycopg, redis, boto3,
kubernetes, prometheus_api_client) are imported inside the checks, never at module load.
"""

from __future__ import annotations

# component name -> module in this package
MODULES: dict[str, str] = {
    "postgres": "postgres", "redis": "redis", "rabbitmq": "rabbitmq", "s3": "s3", "aws": "aws",
    "kubernetes": "kube", "slo": "slo",
}
