"""The plan's worker server preloads every module the program uses, and only those, so no worker imports one again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    import taly_ops.offline.preload
    from taly_ops.offline.plan import build_plan
    from taly_ops.project import project_root
    before = set(sys.modules)
    for env in ("dev", "staging", "prod"):
        build_plan(project_root(), env)
    late = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_kubernetes",
                                                                              "pulumi_random", "taly_platform"))
    print("LATE", late)
    print("EC2", sorted(m for m in sys.modules if m.startswith("pulumi_aws.ec2.")))
""")


def _run(script: str, project_root) -> str:
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TALY_PROJECT_ROOT": str(project_root)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def three_plans(project_root) -> str:
    """What a process that imported the preload, then planned every environment, printed."""
    return _run(SCRIPT, project_root)


def test_the_program_imports_nothing_the_preload_did_not(three_plans):
    out = three_plans
    assert "LATE []" in out, out + "\nadd the members these modules define to offline/preload.py (AWS_MEMBERS or KUBERNETES_MODULES)"


def test_a_service_package_loads_only_the_members_the_program_uses(three_plans):
    [ec2] = [line for line in three_plans.splitlines() if line.startswith("EC2 ")]
    assert "'pulumi_aws.ec2.vpc'" in ec2 and "'pulumi_aws.ec2.nat_gateway'" in ec2
    assert "pulumi_aws.ec2.ami'" not in ec2 and "pulumi_aws.ec2.transit_gateway'" not in ec2  # never used


def test_any_other_member_still_resolves_as_pulumi_aws_would(project_root):
    """Input types, enums, functions and submodules: by file where the names say so, else the whole package."""
    out = _run(textwrap.dedent("""
        import sys
        import taly_ops.offline.preload
        import pulumi_aws as aws
        from pulumi_aws.ec2 import outputs
        assert aws.ec2.VpcArgs.__module__ == "pulumi_aws.ec2.vpc"
        assert aws.ec2.get_vpc_output.__module__ == "pulumi_aws.ec2.get_vpc"
        assert outputs.__name__ == "pulumi_aws.ec2.outputs"
        assert "pulumi_aws.ec2.ami" not in sys.modules
        assert aws.ec2.SecurityGroupIngressArgs.__module__ == "pulumi_aws.ec2._inputs"
        assert aws.ec2.InstanceType.T3_MICRO == "t3.micro"   # an enum: the package loads whole
        assert aws.ec2.Ami.__module__ == "pulumi_aws.ec2.ami" and "pulumi_aws.ec2.ami" in sys.modules
        try:
            aws.ec2.NoSuchThing
        except AttributeError:
            print("OK")
    """), project_root)
    assert out.strip() == "OK"
