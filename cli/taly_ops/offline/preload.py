"""Imported once by the plan's fork server, so each environment's worker starts with Pulumi loaded.

pulumi_aws and pulumi_kubernetes load their submodules lazily; touching the ones the program
uses here moves that cost out of every worker.
"""

import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import pulumi  # noqa: E402,F401
import pulumi_aws as aws  # noqa: E402
import pulumi_kubernetes as k8s  # noqa: E402
import pulumi_random  # noqa: E402,F401

from taly_platform import program  # noqa: E402,F401
from taly_platform.components import estate  # noqa: E402,F401

from . import plan  # noqa: E402,F401

for _module in ("ec2", "rds", "iam", "s3", "kms", "eks", "elasticache", "mq", "secretsmanager", "ssm",
                "backup", "wafv2", "cloudtrail", "cloudwatch", "amp", "sns"):
    getattr(aws, _module)
_ = (k8s.core.v1.Namespace, k8s.rbac.v1.Role, k8s.apps.v1.Deployment, k8s.autoscaling.v2.HorizontalPodAutoscaler,
     k8s.policy.v1.PodDisruptionBudget, k8s.networking.v1.NetworkPolicy, k8s.helm.v3.Chart)

# Keep the preloaded objects out of the workers' garbage collections, so forked workers keep
# sharing those pages instead of copying them (memory is counted per worker otherwise).
import gc  # noqa: E402

gc.freeze()
