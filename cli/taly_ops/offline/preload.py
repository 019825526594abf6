"""Imported once by the plan's worker server, so each environment's worker starts with what the program uses loaded.

pulumi_aws registers its service packages as lazy modules: `aws.ec2` is a stub until an attribute
of it is read, and then the whole of `pulumi_aws/ec2` loads (180 modules), though the program uses
8 of its resources. Here each service package the program uses loads one file per member instead
(`Members`), and the members the program uses (`AWS_MEMBERS`) are loaded now, once: 0.7 s and
40 MB less than whole packages, taken out of every worker, whose forks share these pages.
`tests/unit/test_plan_preload.py` fails when the program starts using a module not loaded here.
A single environment's plan, run in the CLI's own process, imports this module too.
"""

import gc
import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
import warnings

# The imports below create some 200,000 objects and no garbage: collecting while they load would
# cost a quarter of their time and free nothing.
gc.disable()
warnings.filterwarnings("ignore", category=DeprecationWarning)

import pulumi  # noqa: E402,F401
import pulumi_aws as aws  # noqa: E402
import pulumi_kubernetes as k8s  # noqa: E402
import pulumi_random  # noqa: E402,F401

AWS_MEMBERS = {
    "amp": ("RuleGroupNamespace", "Workspace"),
    "backup": ("Plan", "Selection", "Vault"),
    "cloudtrail": ("Trail",),
    "cloudwatch": ("LogGroup", "MetricAlarm"),
    "ec2": ("DefaultSecurityGroup", "Eip", "FlowLog", "InternetGateway", "LaunchTemplate", "NatGateway", "RouteTable",
            "RouteTableAssociation", "SecurityGroup", "Subnet", "Vpc", "VpcEndpoint"),
    "eks": ("AccessEntry", "Cluster", "NodeGroup"),
    "elasticache": ("ReplicationGroup", "SubnetGroup"),
    "iam": ("OpenIdConnectProvider", "Role", "RolePolicy", "RolePolicyAttachment"),
    "kms": ("Alias", "Key"),
    "lambda_": ("Function",),
    "mq": ("Broker",),
    "rds": ("Instance", "InstanceAutomatedBackupsReplication", "ParameterGroup", "SubnetGroup"),
    "s3": ("Bucket", "BucketLifecycleConfiguration", "BucketOwnershipControls", "BucketPolicy",
           "BucketPublicAccessBlock", "BucketReplicationConfig", "BucketServerSideEncryptionConfiguration",
           "BucketVersioning"),
    "scheduler": ("Schedule",),
    "secretsmanager": ("Secret", "SecretVersion"),
    "sns": ("Topic",),
    "ssm": ("Parameter",),
    "wafv2": ("WebAcl", "WebAclLoggingConfiguration"),
}
KUBERNETES_MODULES = (k8s.meta.v1, k8s.core.v1, k8s.rbac.v1, k8s.apps.v1, k8s.autoscaling.v2, k8s.policy.v1,
                      k8s.networking.v1, k8s.helm.v3, k8s.yaml)


class Members(types.ModuleType):
    """A pulumi_aws service package that loads the file defining a member when the member is first read.

    The generated packages put `Foo` and `FooArgs` in `foo.py` and `get_foo`/`get_foo_output` in
    `get_foo.py`. A member found elsewhere (an enum, an input type) loads the package whole, as
    pulumi_aws would have: slower, never wrong.
    """

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        file = re.sub(r"(?<!^)(?=[A-Z])", "_", re.sub(r"Args(Dict)?$", "", name).removesuffix("_output")).lower()
        try:
            module = importlib.import_module(f"{self.__name__}.{file}")
        except ImportError:
            module = None
        if module is not None and name in getattr(module, "__all__", ()):
            value = getattr(module, name)
        elif module is not None and file == name:  # a module of the package: outputs, _inputs
            value = module
        else:
            self.__class__ = types.ModuleType
            self.__spec__.loader.exec_module(self)  # the package's __init__: every member
            return types.ModuleType.__getattribute__(self, name)
        setattr(self, name, value)
        return value


def load_members(service: str, names: tuple[str, ...]) -> None:
    """Make `pulumi_aws.<service>` a `Members` package, unless something loaded it whole already, and load `names`."""
    name = f"pulumi_aws.{service}"
    if type(sys.modules.get(name)).__name__ == "_LazyModule":  # pulumi's stub, not loaded yet
        package = importlib.util.module_from_spec(importlib.machinery.PathFinder.find_spec(name, aws.__path__))
        package.__class__ = Members
        sys.modules[name] = package
        setattr(aws, service, package)
    for member in names:
        getattr(getattr(aws, service), member)


for _service, _names in AWS_MEMBERS.items():
    load_members(_service, _names)
for _module in KUBERNETES_MODULES:
    getattr(_module, "_utilities", None)  # any attribute but `__name__`, `__path__`... loads a lazy module

from taly_platform import program  # noqa: E402,F401
from taly_platform.components import estate  # noqa: E402,F401

from . import helm_cache, mocks  # noqa: E402,F401

# Keep the preloaded objects out of the workers' garbage collections, so forked workers keep
# sharing those pages instead of copying them (memory is counted per worker otherwise).
gc.freeze()
gc.enable()
