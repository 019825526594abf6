"""The chart values of one CMS service's release: `charts/taly-service/services/<name>.yaml` plus an
environment's layer.

The one values path of the chart. The Pulumi program (components/workloads.py) and the local estate's
cluster (taly_ops/local/workloads.py) both build a release's values here, so that the local cluster runs
the objects the plan shows. Nothing here imports Pulumi: the local estate renders without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ServicesConfig
from .safe_yaml import load_file

CHART = Path(__file__).resolve().parents[2] / "charts" / "taly-service"


def release_name(prefix: str, service: str) -> str:
    """A service's Helm release (and Pulumi chart) name: `taly-dev-auth`; the pods' app.kubernetes.io/instance."""
    return f"{prefix}-{service}"


def namespace_labels(environment: str) -> dict[str, str]:
    """The services' namespace's labels: Pod Security `restricted`, enforced and audited."""
    return {"app.kubernetes.io/part-of": "taly", "taly/environment": environment,
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted"}


def release_values(service: str, *, environment: str, region: str, services: ServicesConfig, role_arn: Any,
                   web_acl_arn: Any, data_cidrs: list[str], chart_dir: Path = CHART) -> dict[str, Any]:
    """The chart values of one service: its services/<name>.yaml plus this environment's layer.

    role_arn and web_acl_arn may be Pulumi outputs (the program's) or plain strings (the local estate's).
    """
    values = load_file(chart_dir / "services" / f"{service}.yaml")
    values |= {
        "environment": environment,
        "region": region,
        "image": {"repository": f"{services.image_registry}/{service}", "tag": services.initial_image_tag},
        "serviceAccount": {"roleArn": role_arn},
        "sizing": services.sizing_for(service).model_dump(by_alias=True),
        "logLevel": services.log_level,
    }
    values.setdefault("networkPolicy", {})["dataCidrs"] = data_cidrs
    if values.get("ingress", {}).get("enabled"):
        values["ingress"] |= {"host": services.ingress_host, "certificateArn": services.certificate_arn,
                              "wafAclArn": web_acl_arn}
    return values
