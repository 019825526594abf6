"""Imported once by the plan's fork server, so each environment's worker starts with Pulumi loaded.

pulumi_aws and pulumi_kubernetes register their submodules as lazy modules: `aws.ec2` is a stub
until an attribute of it is read, and then all of `pulumi_aws/ec2` loads (180 modules). Importing
them here, once, takes that cost (1.5 s of a plan's 4) out of every worker, and the forked workers
share the loaded modules' memory instead of each holding a copy.
`tests/unit/test_plan_preload.py` fails when the program starts using a module not listed here.
A single environment's plan, run in the CLI's own process, imports this module too.
"""

import gc
import warnings

# The imports below create some 300,000 objects and no garbage: collecting while they load would
# cost a quarter of their time (0.45 s of 1.8) and free nothing.
gc.disable()
warnings.filterwarnings("ignore", category=DeprecationWarning)

import pulumi  # noqa: E402,F401
import pulumi_aws as aws  # noqa: E402
import pulumi_kubernetes as k8s  # noqa: E402
import pulumi_random  # noqa: E402,F401

from taly_platform import program  # noqa: E402,F401
from taly_platform.components import estate  # noqa: E402,F401

from . import plan  # noqa: E402,F401
from . import mocks  # noqa: E402,F401
from . import helm_cache  # noqa: E402,F401

AWS_MODULES = ("amp", "backup", "cloudtrail", "cloudwatch", "ec2", "eks", "elasticache", "iam", "kms", "lambda_", "mq",
               "rds", "s3", "scheduler", "secretsmanager", "sns", "ssm", "wafv2")
KUBERNETES_MODULES = (k8s.meta.v1, k8s.core.v1, k8s.rbac.v1, k8s.apps.v1, k8s.autoscaling.v2, k8s.policy.v1,
                      k8s.networking.v1, k8s.helm.v3, k8s.yaml)


def load(module) -> None:
    """Load a lazy module now: any attribute but the introspection ones (`__name__`, `__path__`...) does."""
    getattr(module, "_utilities", None)


for _name in AWS_MODULES:
    load(getattr(aws, _name))
for _module in KUBERNETES_MODULES:
    load(_module)

# Keep the preloaded objects out of the workers' garbage collections, so forked workers keep
# sharing those pages instead of copying them (memory is counted per worker otherwise).
gc.freeze()
gc.enable()
