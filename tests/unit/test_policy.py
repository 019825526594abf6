"""The policy pack: every rule fails on a violating plan and passes on a compliant one, in both runners."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Callable

import pytest
from typer.testing import CliRunner

from taly_platform.config import PolicyExemption
from taly_ops.app import app
from taly_ops.operations.policy import view_of
from taly_ops.policy.engine import evaluate
from taly_ops.policy.model import StackView, Subject
from taly_ops.policy.pack import all_rules

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def _workload(name: str = "content") -> list[Subject]:
    """A compliant Deployment with its HPA and PDB, shaped like the chart renders them."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    container = {
        "name": name, "image": f"registry.example/taly/{name}:1.4.2",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 3000}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 3000}},
    }
    meta = {"name": name, "namespace": "taly-prod", "labels": labels}
    return [
        Subject(DEPLOYMENT, f"taly-prod/{name}", {"metadata": meta, "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"securityContext": {"runAsNonRoot": True}, "containers": [container]}}}}),
        Subject(HPA, f"taly-prod/{name}-hpa", {"metadata": meta, "spec": {"minReplicas": 3, "maxReplicas": 20}}),
        Subject(PDB, f"taly-prod/{name}-pdb", {"metadata": meta, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}),
    ]


@pytest.fixture(scope="module")
def compliant(plans) -> StackView:
    view = view_of(plans["prod"])
    if not view.of_type(DEPLOYMENT):  # until the charts are in the plan, a chart-shaped workload stands in
        view.resources += _workload()
    return view


def _edit(type_token: str, change: Callable[[Subject], Subject], only_first: bool = True):
    def mutate(view: StackView) -> StackView:
        out, done = [], False
        for r in view.resources:
            if r.type == type_token and not (only_first and done):
                r, done = change(replace(r, props=copy.deepcopy(r.props))), True
            out.append(r)
        assert done, f"no {type_token} to break"
        return StackView(view.environment, out)
    return mutate


def _props(**changes) -> Callable[[Subject], Subject]:
    def change(r: Subject) -> Subject:
        for path, value in changes.items():
            node = r.props
            *parents, leaf = path.split("__")
            for p in parents:
                node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
            node[leaf] = value
        return r
    return change


def _drop_type(type_token: str):
    def mutate(view: StackView) -> StackView:
        return StackView(view.environment, [r for r in view.resources if r.type != type_token])
    return mutate


def _container(**changes):
    return _props(**{f"spec__template__spec__containers__0__{k}": v for k, v in changes.items()})


def _policy_statements_without_tls(r: Subject) -> Subject:
    doc = json.loads(r.props["policy"])
    doc["Statement"] = [s for s in doc["Statement"] if s["Effect"] != "Deny"]
    r.props["policy"] = json.dumps(doc)
    return r


BREAKS: dict[str, Callable[[StackView], StackView]] = {
    "s3-encryption-kms": _edit("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                               _props(rules__0__applyServerSideEncryptionByDefault__sseAlgorithm="AES256")),
    "s3-public-access-blocked": _edit("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", _props(restrictPublicBuckets=False)),
    "s3-tls-only": _edit("aws:s3/bucketPolicy:BucketPolicy", _policy_statements_without_tls),
    "s3-owner-enforced": _edit("aws:s3/bucketOwnershipControls:BucketOwnershipControls", _props(rule__objectOwnership="ObjectWriter")),
    "s3-versioning": _drop_type("aws:s3/bucketVersioning:BucketVersioning"),
    "rds-encrypted": _edit("aws:rds/instance:Instance", _props(storageEncrypted=False)),
    "rds-private": _edit("aws:rds/instance:Instance", _props(publiclyAccessible=True)),
    "rds-backup-retention": _edit("aws:rds/instance:Instance", _props(backupRetentionPeriod=3)),
    "rds-tls-enforced": _edit("aws:rds/parameterGroup:ParameterGroup", _props(parameters=[])),
    "rds-prod-multi-az": _edit("aws:rds/instance:Instance", _props(multiAz=False)),
    "rds-prod-deletion-protection": _edit("aws:rds/instance:Instance", _props(deletionProtection=False)),
    "rds-performance-insights": _edit("aws:rds/instance:Instance", _props(performanceInsightsEnabled=False)),
    "redis-encrypted": _edit("aws:elasticache/replicationGroup:ReplicationGroup", _props(transitEncryptionEnabled=False)),
    "redis-prod-multi-az": _edit("aws:elasticache/replicationGroup:ReplicationGroup", _props(multiAzEnabled=False)),
    "redis-snapshots": _edit("aws:elasticache/replicationGroup:ReplicationGroup", _props(snapshotRetentionLimit=0)),
    "mq-private": _edit("aws:mq/broker:Broker", _props(publiclyAccessible=True)),
    "mq-prod-multi-az": _edit("aws:mq/broker:Broker", _props(deploymentMode="SINGLE_INSTANCE")),
    "mq-logs": _edit("aws:mq/broker:Broker", _props(logs__general=False)),
    "prod-protected": _edit("aws:s3/bucket:Bucket", lambda r: replace(r, protect=False)),
    "kms-rotation": _edit("aws:kms/key:Key", _props(enableKeyRotation=False)),
    "secrets-kms": _edit("aws:secretsmanager/secret:Secret", _props(kmsKeyId=None)),
    "logs-encrypted": _edit("aws:cloudwatch/logGroup:LogGroup", _props(kmsKeyId=None)),
    "cloudtrail-on": _drop_type("aws:cloudtrail/trail:Trail"),
    "eks-private-endpoint": _edit("aws:eks/cluster:Cluster", _props(vpcConfig__endpointPublicAccess=True, vpcConfig__publicAccessCidrs=["0.0.0.0/0"])),
    "eks-logs-and-secrets": _edit("aws:eks/cluster:Cluster", _props(enabledClusterLogTypes=["api"])),
    "imdsv2-required": _edit("aws:ec2/launchTemplate:LaunchTemplate", _props(metadataOptions__httpTokens="optional")),
    "sg-no-world-ingress": _edit("aws:ec2/securityGroup:SecurityGroup", _props(ingress=[
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]}])),
    "k8s-no-privileged": _edit(DEPLOYMENT, _container(securityContext__privileged=True)),
    "k8s-non-root": _edit(DEPLOYMENT, _container(securityContext__runAsUser=0)),
    "k8s-read-only-root": _edit(DEPLOYMENT, _container(securityContext__readOnlyRootFilesystem=False)),
    "k8s-resources": _edit(DEPLOYMENT, _container(resources={"requests": {"cpu": "100m"}})),
    "k8s-probes": _edit(DEPLOYMENT, _container(readinessProbe=None)),
    "k8s-no-latest-tag": _edit(DEPLOYMENT, _container(image="registry.example/taly/content:latest")),
    "k8s-prod-hpa-min": _edit(HPA, _props(spec__minReplicas=2)),
    "k8s-pdb-per-deployment": _drop_type(PDB),
}


def _status(view: StackView, rule_id: str) -> str:
    (result,) = [r for r in evaluate(view).results if r.id == rule_id]
    return result.status


def test_at_least_25_rules_with_both_severities():
    rules = all_rules()
    assert len(rules) >= 25
    assert {r.severity for r in rules} == {"mandatory", "advisory"}
    assert all(r.rationale for r in rules)


def test_every_rule_has_a_breaking_case():
    assert set(BREAKS) == {r.id for r in all_rules()}


@pytest.mark.parametrize("rule_id", sorted(BREAKS))
def test_rule_passes_on_the_compliant_plan_and_fails_on_the_violating_one(compliant, rule_id):
    assert _status(compliant, rule_id) == "pass"
    assert _status(BREAKS[rule_id](compliant), rule_id) == "fail"


def test_prod_only_rules_do_not_apply_to_dev(compliant):
    dev = StackView("dev", BREAKS["rds-prod-multi-az"](compliant).resources)
    assert _status(dev, "rds-prod-multi-az") == "pass"


def test_exemption_turns_a_failure_into_exempt_with_its_reason(compliant):
    broken = BREAKS["rds-performance-insights"](compliant)
    reason = "PI is billed per vCPU; enabled after the launch"
    report = evaluate(broken, [PolicyExemption(rule="rds-performance-insights", reason=reason)])
    (result,) = [r for r in report.results if r.id == "rds-performance-insights"]
    assert result.status == "exempt" and result.exemption == reason
    assert report.passed


def test_exemption_for_other_resources_does_not_hide_a_failure(compliant):
    broken = BREAKS["rds-encrypted"](compliant)
    report = evaluate(broken, [PolicyExemption(rule="rds-encrypted", resources=["some-other-db"], reason="not this one at all")])
    assert not report.passed


def test_crossguard_runner_reports_the_same_violations(compliant, project_root):
    """The CrossGuard policies, fed stack resources the way the Pulumi engine does, agree with `taly policy check`."""
    from pulumi_policy import PolicyResource, PolicyResourceOptions, StackValidationArgs

    from taly_ops.policy.crossguard import build_policies

    def as_args(view: StackView) -> StackValidationArgs:
        resources = []
        for r in view.resources:
            props = copy.deepcopy(r.props)
            if r.type.startswith("aws:"):
                props.setdefault("tags", {})["environment"] = view.environment
            opts = PolicyResourceOptions(r.protect, [], None, [], None, [])
            resources.append(PolicyResource(r.type, props, f"urn:{r.name}", r.name, opts, None, None, [], {}))
        return StackValidationArgs(resources)

    policies = {p.name: p for p in build_policies(project_root)}
    assert set(policies) == {r.id for r in all_rules()}
    for rule_id, breaker in BREAKS.items():
        for view, expect in ((compliant, False), (breaker(compliant), True)):
            reported: list[str] = []
            policies[rule_id].validate(as_args(view), lambda message, urn=None: reported.append(message))
            assert bool(reported) is expect, (rule_id, reported)


runner = CliRunner()


def test_cli_check_exit_codes_and_json(project_root):
    result = runner.invoke(app, ["policy", "check", "--env", "prod", "--output", "json"], env={"TALY_PROJECT_ROOT": str(project_root)})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["environment"] == "prod"
    assert {r["id"] for r in data["results"]} == {r.id for r in all_rules()}


def test_cli_check_fails_with_exit_1_on_a_violation(tmp_path, project_root):
    import shutil

    shutil.copy(project_root / "Pulumi.yaml", tmp_path)
    shutil.copytree(project_root / "stacks", tmp_path / "stacks")
    prod = tmp_path / "stacks" / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text().replace("    deletionProtection: true\n", "    deletionProtection: false\n", 1))
    result = runner.invoke(app, ["policy", "check", "--env", "prod", "--output", "json"], env={"TALY_PROJECT_ROOT": str(tmp_path)})
    assert result.exit_code == 1, result.output
    failed = {r["id"] for r in json.loads(result.stdout)["results"] if r["status"] == "fail"}
    assert "rds-prod-deletion-protection" in failed


def test_cli_exemption_shown_and_unknown_rule_refused(tmp_path, project_root):
    import shutil

    shutil.copy(project_root / "Pulumi.yaml", tmp_path)
    shutil.copytree(project_root / "stacks", tmp_path / "stacks")
    dev = tmp_path / "stacks" / "Pulumi.dev.yaml"
    base = dev.read_text()
    no_snapshots = base.replace("snapshotRetentionDays: 1", "snapshotRetentionDays: 0")
    dev.write_text(no_snapshots + "  taly:policy:\n    exemptions:\n      - rule: redis-snapshots\n        reason: dev cache is disposable\n")
    env = {"TALY_PROJECT_ROOT": str(tmp_path)}
    result = runner.invoke(app, ["policy", "check", "--env", "dev", "--output", "json"], env=env)
    assert result.exit_code == 0, result.output
    (snap,) = [r for r in json.loads(result.stdout)["results"] if r["id"] == "redis-snapshots"]
    assert snap["status"] == "exempt" and snap["exemption"] == "dev cache is disposable"
    table = runner.invoke(app, ["policy", "check", "--env", "dev"], env={**env, "COLUMNS": "200"})
    assert "dev cache is disposable" in table.output
    dev.write_text(base + "  taly:policy:\n    exemptions:\n      - rule: no-such-rule\n        reason: a reason long enough\n")
    result = runner.invoke(app, ["policy", "check", "--env", "dev"], env=env)
    assert result.exit_code == 2 and "no-such-rule" in result.output


def test_cli_list(project_root):
    result = runner.invoke(app, ["policy", "list", "--output", "json"])
    assert result.exit_code == 0
    rules = json.loads(result.stdout)["rules"]
    assert all({"id", "severity", "rationale"} <= set(r) for r in rules)


def test_rules_modules_import_only_the_model_and_nothing_imports_back():
    """No registration by import side effect: rules modules list their RULES, the pack collects them."""
    import ast
    from pathlib import Path

    import taly_ops.policy as package

    def siblings(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
        return found

    folder = Path(package.__file__).parent
    imports = {p.stem: siblings(p) for p in folder.glob("*.py") if p.stem != "__init__"}
    assert imports["model"] == set()
    for name in imports:
        if name.startswith("rules_"):
            assert imports[name] == {"model"}, name
            assert name in imports["pack"]
    assert "pack" not in imports["model"] | {m for n, i in imports.items() if n.startswith("rules_") for m in i}
