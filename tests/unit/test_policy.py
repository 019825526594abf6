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
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RDS = "aws:rds/instance:Instance"
PLAN = "aws:backup/plan:Plan"
ACL = "aws:wafv2/webAcl:WebAcl"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ALERTS = "aws:amp/ruleGroupNamespace:RuleGroupNamespace"
NAT = "aws:ec2/natGateway:NatGateway"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


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


def _edit(type_token: str, change: Callable[[Subject], Subject], only_first: bool = True,
          where: Callable[[Subject], bool] = lambda r: True):
    def mutate(view: StackView) -> StackView:
        out, done = [], False
        for r in view.resources:
            if r.type == type_token and where(r) and not (only_first and done):
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


def _drop_type(type_token: str, where: Callable[[Subject], bool] = lambda r: True):
    def mutate(view: StackView) -> StackView:
        kept = [r for r in view.resources if not (r.type == type_token and where(r))]
        assert len(kept) < len(view.resources), f"no {type_token} to drop"
        return StackView(view.environment, kept)
    return mutate


def _annotate(**changes: str | None) -> Callable[[Subject], Subject]:
    """Change an Ingress's ALB annotations (keys without the alb.ingress.kubernetes.io/ prefix)."""
    def change(r: Subject) -> Subject:
        notes = r.props["metadata"]["annotations"]
        for key, value in changes.items():
            key = f"alb.ingress.kubernetes.io/{key.replace('_', '-')}"
            if value is None:
                notes.pop(key, None)
            else:
                notes[key] = value
        return r
    return change


def _alert_rules(old: str, new: str) -> Callable[[Subject], Subject]:
    def change(r: Subject) -> Subject:
        assert old in r.props["data"]
        r.props["data"] = r.props["data"].replace(old, new, 1)
        return r
    return change


def _admin_policy(r: Subject) -> Subject:
    r.props["policy"] = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    return r


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
    # --- the seeds' numbers and AWS FSBP controls (docs/policy-seeds.md) ---
    "s3-lifecycle": _edit(LIFECYCLE, _props(rules__0__noncurrentVersionExpiration=None)),
    "s3-media-tiering": _edit(LIFECYCLE, _props(rules__0__transitions__1__days=180), where=lambda r: "media" in r.name),
    "s3-prod-backups-replicated": _drop_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig"),
    "rds-prod-read-replica": _drop_type(RDS, where=lambda r: bool(r.props.get("replicateSourceDb"))),
    "rds-prod-cross-region-backups": _drop_type(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"),
    "rds-logs-exported": _edit(RDS, _props(enabledCloudwatchLogsExports=["upgrade"])),
    "rds-storage-autoscaling": _edit(RDS, _props(maxAllocatedStorage=200), where=lambda r: not r.props.get("replicateSourceDb")),
    "minor-version-upgrades": _edit("aws:mq/broker:Broker", _props(autoMinorVersionUpgrade=False)),
    "redis-hourly-snapshots": _edit("aws:scheduler/schedule:Schedule", _props(scheduleExpression="rate(1 day)")),
    "backup-plan-retention": _edit(PLAN, _props(rules__0__lifecycle__deleteAfter=14)),
    "backup-covers-databases": _drop_type("aws:backup/selection:Selection"),
    "backup-vault-encrypted": _edit("aws:backup/vault:Vault", _props(kmsKeyArn=None)),
    "backup-prod-cross-region-copy": _edit(PLAN, _props(rules__0__copyActions=[])),
    "kms-prod-deletion-window": _edit("aws:kms/key:Key", _props(deletionWindowInDays=7)),
    "sns-encrypted": _edit("aws:sns/topic:Topic", _props(kmsMasterKeyId=None)),
    "waf-rate-limit": _edit(ACL, _props(rules__0__statement__rateBasedStatement__limit=500)),
    "waf-managed-rules": _edit(ACL, _props(rules__1__overrideAction={"count": {}})),
    "waf-logging": _drop_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"),
    "iam-no-admin": _edit("aws:iam/rolePolicy:RolePolicy", _admin_policy),
    "eks-prod-nodes-multi-az": _edit("aws:eks/nodeGroup:NodeGroup", _props(scalingConfig__minSize=1)),
    "vpc-default-sg-closed": _edit("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", _props(
        egress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}])),
    "vpc-flow-logs": _drop_type("aws:ec2/flowLog:FlowLog"),
    "subnets-no-public-ip": _edit("aws:ec2/subnet:Subnet", _props(mapPublicIpOnLaunch=True)),
    "vpc-prod-multi-az": _drop_type(NAT, where=lambda r: not r.name.endswith("1a")),
    "alerts-seed-thresholds": _edit(ALERTS, _alert_rules("service:http_error_ratio:rate5m > 0.05",
                                                         "service:http_error_ratio:rate5m > 0.5")),
    "alarms-seed-thresholds": _edit(ALARM, _props(threshold=60), where=lambda r: r.name.endswith("replica-1-lag")),
    "k8s-prod-hpa-max": _edit(HPA, _props(spec__maxReplicas=10)),
    "k8s-hpa-targets": _edit(HPA, _props(spec__metrics__0__resource__target__averageUtilization=90)),
    "k8s-rolling-update": _edit(DEPLOYMENT, _props(spec__strategy__rollingUpdate__maxUnavailable=1)),
    "k8s-probe-timing": _edit(DEPLOYMENT, _container(livenessProbe__periodSeconds=30)),
    "k8s-prod-zone-spread": _edit(DEPLOYMENT, _props(spec__template__spec__topologySpreadConstraints=[])),
    "k8s-ingress-tls-waf": _edit(INGRESS, _annotate(wafv2_acl_arn=None)),
}

# More ways to break some rules: each must fail the rule too.
MORE_BREAKS: list[tuple[str, str, Callable[[StackView], StackView]]] = [
    ("cloudtrail-on", "logging switched off", _edit("aws:cloudtrail/trail:Trail", _props(enableLogging=False))),
    ("cloudtrail-on", "no global service events", _edit("aws:cloudtrail/trail:Trail", _props(includeGlobalServiceEvents=False))),
    ("waf-rate-limit", "100 per 30 s is 200 a minute",
     _edit(ACL, _props(rules__0__statement__rateBasedStatement__evaluationWindowSec=30))),
    ("waf-rate-limit", "only counted", _edit(ACL, _props(rules__0__action={"count": {}}))),
    ("backup-plan-retention", "weekly", _edit(PLAN, _props(rules__0__schedule="cron(0 3 ? * SUN *)"))),
    ("backup-plan-retention", "no plan", _drop_type(PLAN)),
    ("rds-prod-cross-region-backups", "kept 3 days",
     _edit("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication", _props(retentionPeriod=3))),
    ("redis-hourly-snapshots", "no schedule", _drop_type("aws:scheduler/schedule:Schedule")),
    ("vpc-prod-multi-az", "two zones", _drop_type("aws:ec2/subnet:Subnet", where=lambda r: r.name.endswith("1c"))),
    ("eks-prod-nodes-multi-az", "one subnet", _edit("aws:eks/nodeGroup:NodeGroup", _props(subnetIds=["subnet-a"]))),
    ("alerts-seed-thresholds", "no replication lag alert", _edit(ALERTS, _alert_rules("alert: DatabaseReplicationLag",
                                                                                      "alert: SomethingElse"))),
    ("alerts-seed-thresholds", "low disk at 2 %", _edit(ALERTS, _alert_rules("< 0.10", "< 0.02"))),
    ("alarms-seed-thresholds", "a replica without a lag alarm", _drop_type(ALARM, where=lambda r: r.name.endswith("replica-2-lag"))),
    ("alarms-seed-thresholds", "an alarm that tells nobody", _edit(ALARM, _props(alarmActions=[]))),
    ("k8s-probe-timing", "5 failures", _edit(DEPLOYMENT, _container(readinessProbe__failureThreshold=5))),
    ("k8s-hpa-targets", "no memory metric", _edit(HPA, _props(spec__metrics=[
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]))),
    ("k8s-ingress-tls-waf", "TLS 1.0 policy", _edit(INGRESS, _annotate(ssl_policy="ELBSecurityPolicy-2016-08"))),
    ("k8s-ingress-tls-waf", "plain HTTP", _edit(INGRESS, _annotate(ssl_redirect=None))),
    ("s3-prod-backups-replicated", "to the same region", _edit(
        "aws:s3/bucket:Bucket", _props(region=None), where=lambda r: r.name.endswith("backups-dr"))),
    ("iam-no-admin", "a list of actions with *", _edit("aws:iam/rolePolicy:RolePolicy", lambda r: replace(r, props={
        **r.props, "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "*"],
                                                        "Resource": ["*"]}]})}))),
]


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


@pytest.mark.parametrize("rule_id, how", [(r, h) for r, h, _ in MORE_BREAKS])
def test_rule_fails_on_more_ways_to_break_it(compliant, rule_id, how):
    (breaker,) = [b for r, h, b in MORE_BREAKS if (r, h) == (rule_id, how)]
    assert _status(breaker(compliant), rule_id) == "fail"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_shipped_stack_passes_every_rule(plans, env):
    report = evaluate(view_of(plans[env]))
    assert [(r.id, r.violations) for r in report.results if r.status != "pass"] == []


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
