"""CrossGuard entry point: `pulumi preview --stack prod --policy-pack policy`.

The rules live in taly_ops.policy (installed in ../.venv by `make setup`); this file only serves them.
"""

from pulumi_policy import PolicyPack

from taly_ops.policy.crossguard import build_policies

PolicyPack(name="taly", policies=build_policies())
