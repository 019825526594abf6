"""The estate each stack would create, read from the offline plan: the safety properties per environment."""

from __future__ import annotations

import json

import pytest

from taly_platform.catalog import SERVICE_NAMES
from taly_platform.contract import EnvironmentContract
from taly_ops.offline.mocks import REDACTED

ENVS = ("dev", "staging", "prod")
RDS = "aws:rds/instance:Instance"
STATEFUL = (
    "aws:rds/instance:Instance", "aws:elasticache/replicationGroup:ReplicationGroup", "aws:mq/broker:Broker",
    "aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:backup/vault:Vault", "aws:eks/cluster:Cluster",
)


def one(plan, type_token):
    found = plan.of_type(type_token)
    assert len(found) == 1, f"expected one {type_token}, got {[r.name for r in found]}"
    return found[0]


def by_bucket(plan, type_token):
    """Per-bucket resources (public access block, SSE, ...) keyed by the bucket they configure."""
    return {r.inputs["bucket"]: r for r in plan.of_type(type_token)}


# --- network -------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_network_tiers_per_az_and_default_sg_emptied(plans, env):
    plan = plans[env]
    azs = plan.config.network.availability_zones
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    tiers = sorted(r.inputs["tags"]["tier"] for r in subnets)
    assert tiers == sorted(["public", "private", "database"] * len(azs))
    assert {r.inputs["availabilityZone"] for r in subnets} == set(azs)
    assert not any(r.inputs.get("mapPublicIpOnLaunch") for r in subnets)
    default_sg = one(plan, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs.get("ingress", []) == [] and default_sg.inputs.get("egress", []) == []
    endpoint = one(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"].endswith(".s3") and endpoint.inputs["vpcEndpointType"] == "Gateway"
    flow = one(plan, "aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"


def test_nat_gateways_single_in_dev_per_az_in_prod(plans):
    assert len(plans["dev"].of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(plans["dev"].config.network.availability_zones) == 2
    assert len(plans["prod"].of_type("aws:ec2/natGateway:NatGateway")) == 3


# --- KMS and secrets -----------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_every_key_rotates(plans, env):
    keys = plans[env].of_type("aws:kms/key:Key")
    assert {k.inputs["tags"]["purpose"] for k in keys} >= {"data", "eks", "backup", "logs"}
    assert all(k.inputs["enableKeyRotation"] for k in keys)


@pytest.mark.parametrize("env", ENVS)
def test_no_secret_value_reaches_the_plan(plans, env):
    plan = plans[env]
    text = json.dumps(plan.to_json())
    assert "mock-" not in text, "a generated password leaked into the plan"
    versions = plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 3 and all(v.inputs["secretString"] == REDACTED for v in versions)
    assert one(plan, "aws:elasticache/replicationGroup:ReplicationGroup").inputs["authToken"] == REDACTED
    assert plan.named(f"taly-{env}-postgres", RDS).inputs["password"] == REDACTED
    assert one(plan, "aws:mq/broker:Broker").inputs["users"] == REDACTED  # the provider marks the whole list secret
    secrets = plan.of_type("aws:secretsmanager/secret:Secret")
    assert all(s.inputs["kmsKeyId"].startswith("arn:aws:kms:") for s in secrets)


@pytest.mark.parametrize("env", ENVS)
def test_service_settings_are_plain_parameters_under_the_service_path(plans, env):
    params = plans[env].of_type("aws:ssm/parameter:Parameter")
    assert params, "no Parameter Store settings"
    for p in params:
        assert p.inputs["type"] == "String"
        service = p.inputs["tags"]["service"]
        assert p.inputs["name"].startswith(f"/taly/{env}/{service}/")
        assert "insecureValue" in p.inputs and "PASSWORD" not in p.inputs["name"]
    assert {p.inputs["tags"]["service"] for p in params} == set(SERVICE_NAMES)


# --- EKS -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_cluster_private_logged_encrypted_with_irsa(plans, env):
    plan = plans[env]
    cluster = one(plan, "aws:eks/cluster:Cluster")
    vpc = cluster.inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is False
    assert set(cluster.inputs["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster.inputs["encryptionConfig"]["provider"]["keyArn"].startswith("arn:aws:kms:")
    assert cluster.inputs["version"] == plan.config.cluster.version
    oidc = one(plan, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("env", ENVS)
def test_nodes_require_imdsv2_and_follow_config(plans, env):
    plan = plans[env]
    for template in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        meta = template.inputs["metadataOptions"]
        assert meta["httpTokens"] == "required" and meta["httpPutResponseHopLimit"] == 1
        assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    groups = plan.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == len(plan.config.cluster.node_groups)
    for group, cfg in zip(groups, plan.config.cluster.node_groups):
        assert group.inputs["scalingConfig"] == {"minSize": cfg.min_size, "desiredSize": cfg.desired_size, "maxSize": cfg.max_size}


# --- RDS -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_database_encrypted_private_tls_and_backed_up(plans, env):
    plan = plans[env]
    primary = plan.named(f"taly-{env}-postgres", RDS)
    i = primary.inputs
    assert i["storageEncrypted"] is True and i["kmsKeyId"].startswith("arn:aws:kms:")
    assert i["publiclyAccessible"] is False
    assert i["backupRetentionPeriod"] >= 7
    assert i["performanceInsightsEnabled"] is True
    assert "manageMasterUserPassword" not in i, "RDS-managed passwords cannot be combined with replicas"
    params = one(plan, "aws:rds/parameterGroup:ParameterGroup")
    assert {"name": "rds.force_ssl", "value": "1"} in [{k: p[k] for k in ("name", "value")} for p in params.inputs["parameters"]]
    assert i["parameterGroupName"] == params.name
    subnet_group = one(plan, "aws:rds/subnetGroup:SubnetGroup")
    db_subnets = {f"{s.name}-id" for s in plan.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["tier"] == "database"}
    assert set(subnet_group.inputs["subnetIds"]) == db_subnets


@pytest.mark.parametrize("env", ENVS)
def test_database_security_group_admits_only_the_cluster_on_5432(plans, env):
    plan = plans[env]
    sg = plan.named(f"taly-{env}-postgres", "aws:ec2/securityGroup:SecurityGroup")
    (rule,) = sg.inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (5432, 5432, "tcp")
    assert rule.get("cidrBlocks", []) == [] and len(rule["securityGroups"]) == 1
    assert rule["securityGroups"][0].startswith("sg-"), "must reference the cluster's security group"


@pytest.mark.parametrize("env", ENVS)
def test_drill_security_group_admits_nobody_by_default_and_is_in_the_contract(plans, env):
    plan = plans[env]
    sg = plan.named(f"taly-{env}-postgres-drill", "aws:ec2/securityGroup:SecurityGroup")
    assert "drill" in sg.inputs["description"].lower()
    assert sg.inputs["ingress"] == [] and sg.inputs["egress"] == []  # shipped stacks name no drill clients
    assert sg.parent == "database"
    subnet_group = one(plan, "aws:rds/subnetGroup:SubnetGroup")
    db = plan.outputs["database"]
    assert db["drill_security_group_id"] == f"{sg.name}-id"
    assert db["subnet_group_name"] == subnet_group.name
    # The data store's own security group, the one the primary and replicas use, is a different group.
    for instance in plan.of_type(RDS):
        assert db["drill_security_group_id"] not in instance.inputs["vpcSecurityGroupIds"]


def test_drill_client_cidrs_open_5432_to_those_networks_only(plans):
    from taly_ops.offline.plan import run_program
    from taly_ops.operations.policy import view_of
    from taly_ops.policy.engine import evaluate

    config = plans["dev"].config
    config = config.model_copy(update={"database": config.database.model_copy(
        update={"drill_client_cidrs": ["10.10.96.0/24", "10.99.0.0/16"]})})
    plan = run_program(config)
    (rule,) = plan.named("taly-dev-postgres-drill", "aws:ec2/securityGroup:SecurityGroup").inputs["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (5432, 5432, "tcp")
    assert rule["cidrBlocks"] == ["10.10.96.0/24", "10.99.0.0/16"] and not rule.get("securityGroups")
    assert {r.id: r.status for r in evaluate(view_of(plan)).results}["sg-no-world-ingress"] == "pass"


def test_prod_database_multi_az_protected_with_replicas_and_dr_copy(plans):
    plan = plans["prod"]
    primary = plan.named("taly-prod-postgres", RDS)
    assert primary.inputs["multiAz"] is True
    assert primary.inputs["deletionProtection"] is True
    assert primary.inputs["skipFinalSnapshot"] is False and primary.inputs["finalSnapshotIdentifier"]
    assert primary.protect is True
    replicas = [r for r in plan.of_type("aws:rds/instance:Instance") if r.inputs.get("replicateSourceDb")]
    assert len(replicas) == plan.config.database.read_replicas >= 1
    assert all(r.inputs["replicateSourceDb"] == "taly-prod-postgres" and r.protect for r in replicas)
    dr = one(plan, "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert dr.inputs["region"] == plan.config.dr_region != plan.config.region


def test_staging_is_multi_az_without_replicas_and_dev_is_neither(plans):
    assert plans["staging"].named("taly-staging-postgres", RDS).inputs["multiAz"] is True
    dev = plans["dev"]
    assert dev.named("taly-dev-postgres", RDS).inputs["multiAz"] is False
    assert [r for r in dev.of_type("aws:rds/instance:Instance") if r.inputs.get("replicateSourceDb")] == []
    assert [r for r in plans["staging"].of_type("aws:rds/instance:Instance") if r.inputs.get("replicateSourceDb")] == []
    assert dev.of_type("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication") == []


# --- Redis and RabbitMQ --------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_redis_encrypted_with_auth_and_snapshots(plans, env):
    plan = plans[env]
    rg = one(plan, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert rg["atRestEncryptionEnabled"] is True and rg["kmsKeyId"].startswith("arn:aws:kms:")
    assert rg["transitEncryptionEnabled"] is True
    assert rg["snapshotRetentionLimit"] == plan.config.cache.snapshot_retention_days >= 1
    assert rg["numCacheClusters"] == 1 + plan.config.cache.replicas
    multi = env != "dev"
    assert rg["automaticFailoverEnabled"] is multi and rg["multiAzEnabled"] is multi


@pytest.mark.parametrize("env,mode,subnets", [("dev", "SINGLE_INSTANCE", 1), ("staging", "CLUSTER_MULTI_AZ", 3), ("prod", "CLUSTER_MULTI_AZ", 3)])
def test_broker_mode_private_with_logs(plans, env, mode, subnets):
    broker = one(plans[env], "aws:mq/broker:Broker").inputs
    assert broker["deploymentMode"] == mode
    assert len(broker["subnetIds"]) == subnets
    assert broker["publiclyAccessible"] is False
    assert broker["logs"]["general"] is True


# --- S3 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_every_bucket_private_owner_enforced_kms_and_tls_only(plans, env):
    plan = plans[env]
    buckets = {b.inputs["bucket"] for b in plan.of_type("aws:s3/bucket:Bucket")}
    assert len(buckets) == (4 if env == "prod" else 3)
    pab = by_bucket(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    sse = by_bucket(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    own = by_bucket(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    ver = by_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning")
    pol = by_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy")
    for b in buckets:
        flags = pab[b].inputs
        assert all(flags[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
        assert own[b].inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        rule = sse[b].inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        assert rule["sseAlgorithm"] == "aws:kms" and rule["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert ver[b].inputs["versioningConfiguration"]["status"] == "Enabled"
        statements = json.loads(pol[b].inputs["policy"])["Statement"]
        deny = [s for s in statements if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("env", ENVS)
def test_media_lifecycle_follows_the_seeds(plans, env):
    plan = plans[env]
    media = plan.named(f"taly-{env}-media-lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"][0]
    assert [(t["days"], t["storageClass"]) for t in media["transitions"]] == [(30, "STANDARD_IA"), (90, "GLACIER")]
    assert media["noncurrentVersionExpiration"]["noncurrentDays"] == plan.config.storage.noncurrent_version_expiry_days


def test_backups_bucket_replicates_to_the_dr_region_in_prod_only(plans):
    rep = one(plans["prod"], "aws:s3/bucketReplicationConfig:BucketReplicationConfig").inputs
    assert rep["rules"][0]["destination"]["bucket"].startswith("arn:aws:s3:::taly-prod-backups-dr-")
    assert plans["prod"].named("taly-prod-backups-dr", "aws:s3/bucket:Bucket").inputs["region"] == "eu-central-1"
    assert plans["dev"].of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig") == []


# --- IAM -----------------------------------------------------------------------------------------

def _service_policy(plan, env, service):
    return json.loads(plan.named(f"taly-{env}-{service}", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])


@pytest.mark.parametrize("env", ENVS)
def test_one_irsa_role_per_service_trusting_only_its_service_account(plans, env):
    plan = plans[env]
    ns = plan.config.services.namespace
    roles = {r.name: r for r in plan.of_type("aws:iam/role:Role")}
    for svc in SERVICE_NAMES:
        trust = json.loads(roles[f"taly-{env}-{svc}"].inputs["assumeRolePolicy"])
        (st,) = trust["Statement"]
        assert st["Action"] == "sts:AssumeRoleWithWebIdentity"
        cond = st["Condition"]["StringEquals"]
        assert f"system:serviceaccount:{ns}:{svc}" in cond.values()


@pytest.mark.parametrize("env", ENVS)
def test_only_content_may_write_media(plans, env):
    plan = plans[env]
    writers = set()
    for svc in SERVICE_NAMES:
        actions = {a for st in _service_policy(plan, env, svc)["Statement"] for a in st["Action"]}
        assert "s3:*" not in actions and "*" not in actions
        if "s3:PutObject" in actions:
            writers.add(svc)
    assert writers == {"content"}


# --- backups, edge, audit ------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_backup_vault_plan_and_tag_selection(plans, env):
    plan = plans[env]
    vault = plan.named(f"taly-{env}-vault", "aws:backup/vault:Vault")
    assert vault.inputs["kmsKeyArn"].startswith("arn:aws:kms:")
    rule = one(plan, "aws:backup/plan:Plan").inputs["rules"][0]
    assert rule["lifecycle"]["deleteAfter"] == plan.config.backup.retention_days
    assert rule["schedule"].startswith("cron(")
    selection = one(plan, "aws:backup/selection:Selection").inputs
    assert selection["selectionTags"] == [{"type": "STRINGEQUALS", "key": "taly:backup", "value": "true"}]
    assert plan.named(f"taly-{env}-postgres", RDS).inputs["tags"]["taly:backup"] == "true"
    copies = rule.get("copyActions") or []
    assert bool(copies) is (env == "prod")


@pytest.mark.parametrize("env", ENVS)
def test_waf_rate_limit_and_managed_rules(plans, env):
    acl = one(plans[env], "aws:wafv2/webAcl:WebAcl").inputs
    rate = next(r for r in acl["rules"] if "rateBasedStatement" in r["statement"])
    assert rate["statement"]["rateBasedStatement"]["limit"] == 100
    assert rate["statement"]["rateBasedStatement"]["evaluationWindowSec"] == 60
    assert "block" in rate["action"]
    managed = {r["statement"]["managedRuleGroupStatement"]["name"] for r in acl["rules"] if "managedRuleGroupStatement" in r["statement"]}
    assert "AWSManagedRulesCommonRuleSet" in managed


@pytest.mark.parametrize("env", ENVS)
def test_cloudtrail_everywhere(plans, env):
    trail = one(plans[env], "aws:cloudtrail/trail:Trail").inputs
    assert trail["isMultiRegionTrail"] and trail["enableLogFileValidation"] and trail["kmsKeyId"].startswith("arn:aws:kms:")
    assert trail["s3BucketName"].startswith(f"taly-{env}-logs-")


def test_stateful_resources_protected_in_prod_only(plans):
    prod_stateful = [r for t in STATEFUL for r in plans["prod"].of_type(t)]
    assert prod_stateful and all(r.protect for r in prod_stateful), [r.name for r in prod_stateful if not r.protect]
    assert not any(r.protect for r in plans["dev"].resources)


@pytest.mark.parametrize("env", ENVS)
def test_every_resource_belongs_to_a_component(plans, env):
    orphans = [r.name for r in plans[env].resources if r.custom and r.parent is None]
    assert orphans == []


@pytest.mark.parametrize("env", ENVS)
def test_stack_outputs_are_the_environment_contract(plans, env):
    contract = EnvironmentContract.model_validate(plans[env].outputs)
    assert contract.environment == env
    assert len(contract.database.replica_ids) == plans[env].config.database.read_replicas
    assert set(contract.service_roles) == set(SERVICE_NAMES)
    assert "password" not in json.dumps(plans[env].outputs).lower().replace("secret_arn", "")


# --- observability -------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ENVS)
def test_alert_rules_and_alarms_are_provisioned(plans, env, project_root):
    plan = plans[env]
    rules = one(plan, "aws:amp/ruleGroupNamespace:RuleGroupNamespace").inputs["data"]
    assert rules == (project_root / "platform/taly_platform/alerts/taly.rules.yaml").read_text()
    alarms = {a.inputs["name"].removeprefix(f"taly-{env}-"): a.inputs for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    lag = [a for name, a in alarms.items() if name.endswith("-lag")]
    assert len(lag) == plan.config.database.read_replicas
    assert all(a["metricName"] == "ReplicaLag" and a["threshold"] == 10 for a in lag)
    assert alarms["rds-cpu"]["threshold"] == 80
    assert alarms["redis-1-memory"]["threshold"] == 90
    assert "mq-memory" in alarms
    topic = one(plan, "aws:sns/topic:Topic").inputs
    assert topic["kmsMasterKeyId"] and all(a["alarmActions"] for a in alarms.values())


# --- workloads -----------------------------------------------------------------------------------

DEPLOY = "kubernetes:apps/v1:Deployment"


@pytest.mark.parametrize("env", ENVS)
def test_every_service_is_deployed_from_the_chart_with_images_left_to_promotions(plans, env):
    plan = plans[env]
    deployments = plan.of_type(DEPLOY)
    assert sorted(d.inputs["metadata"]["name"] for d in deployments) == sorted(SERVICE_NAMES)
    ns = plan.config.services.namespace
    assert all(d.inputs["metadata"]["namespace"] == ns for d in deployments)
    assert all(d.ignore_changes == ["spec.template.spec.containers[0].image"] for d in deployments)
    for d in deployments:
        (container,) = d.inputs["spec"]["template"]["spec"]["containers"]
        svc = d.inputs["metadata"]["name"]
        assert container["image"] == f"{plan.config.services.image_registry}/{svc}:{plan.config.services.initial_image_tag}"
    accounts = {a.inputs["metadata"]["name"]: a.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                for a in plan.of_type("kubernetes:core/v1:ServiceAccount")}
    assert accounts == {s: plan.outputs["service_roles"][s] for s in SERVICE_NAMES}


@pytest.mark.parametrize("env", ENVS)
def test_autoscaling_follows_the_stack_sizing(plans, env):
    plan = plans[env]
    for hpa in plan.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        sizing = plan.config.services.sizing_for(hpa.inputs["metadata"]["name"])
        assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (sizing.min_replicas, sizing.max_replicas)
    if env == "prod":
        assert all(h.inputs["spec"]["minReplicas"] == 3 and h.inputs["spec"]["maxReplicas"] == 20
                   for h in plan.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"))


@pytest.mark.parametrize("env", ENVS)
def test_namespace_rbac_quota_and_limits(plans, env):
    plan = plans[env]
    (ns,) = plan.of_type("kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    roles = {r.inputs["metadata"]["name"] for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")}
    assert roles == {"taly-platform", "taly-oncall", "taly-ci"}
    ci = next(r for r in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role") if r.inputs["metadata"]["name"] == "taly-ci")
    assert all(rule["apiGroups"] != ["*"] for rule in ci.inputs["rules"])
    (quota,) = plan.of_type("kubernetes:core/v1:ResourceQuota")
    pods_at_max = sum(plan.config.services.sizing_for(s).max_replicas + 1 for s in SERVICE_NAMES)
    assert quota.inputs["spec"]["hard"]["pods"] == str(pods_at_max)
    assert plan.of_type("kubernetes:core/v1:LimitRange")


@pytest.mark.parametrize("env", ENVS)
def test_only_the_gateway_is_exposed_with_the_waf(plans, env):
    plan = plans[env]
    (ingress,) = plan.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.inputs["metadata"]["name"] == "api-gateway"
    assert ingress.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/wafv2-acl-arn"] == plan.outputs["web_acl_arn"]
    assert ingress.inputs["spec"]["tls"]
    deny = [p for p in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy") if p.inputs["metadata"]["name"] == "default-deny-all"]
    assert len(deny) == 1


@pytest.mark.parametrize("env", ENVS)
def test_redis_is_snapshotted_every_hour_and_expired_by_a_function(plans, env):
    plan = plans[env]
    schedule = one(plan, "aws:scheduler/schedule:Schedule")
    function = plan.named(f"taly-{env}-redis-snapshots", "aws:lambda/function:Function")
    assert schedule.inputs["scheduleExpression"] == "rate(1 hour)"
    target = schedule.inputs["target"]["arn"]
    assert target.startswith("arn:aws:lambda:") and target.endswith(f"taly-{env}-redis-snapshots")
    assert function.inputs["code"] == {"archive": {"redis_snapshots.py": {"file": "redis_snapshots.py"}}}
    assert function.inputs["environment"]["variables"] == {"REPLICATION_GROUP_ID": f"taly-{env}-redis",
                                                           "RETENTION_HOURS": "48"}
    assert function.parent == schedule.parent == "cache"
    policy = json.loads(plan.named(f"taly-{env}-redis-snapshots", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    deletes = next(s for s in policy["Statement"] if s["Action"] == "elasticache:DeleteSnapshot")
    assert deletes["Resource"].endswith(f":snapshot:taly-{env}-redis-hourly-*")  # its own snapshots, no others
    grants = [s for s in policy["Statement"] if "kms:CreateGrant" in s["Action"]]
    assert grants and all(s.get("Condition") == {"Bool": {"kms:GrantIsForAWSResource": "true"}} for s in grants)
    invoke = json.loads(plan.named(f"taly-{env}-redis-snapshots-schedule", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert [s["Action"] for s in invoke["Statement"]] == ["lambda:InvokeFunction"]


def test_hourly_redis_snapshots_can_be_switched_off(project_root, tmp_path):
    import shutil

    from taly_ops.offline.plan import build_plan

    (tmp_path / "Pulumi.yaml").write_text((project_root / "Pulumi.yaml").read_text())
    shutil.copytree(project_root / "stacks", tmp_path / "stacks")
    shutil.copytree(project_root / "charts", tmp_path / "charts")
    path = tmp_path / "stacks" / "Pulumi.dev.yaml"
    text = path.read_text()
    assert "  taly:cache:\n" in text
    path.write_text(text.replace("  taly:cache:\n", "  taly:cache:\n    hourlySnapshots: false\n", 1))
    plan = build_plan(tmp_path, "dev")
    assert plan.of_type("aws:scheduler/schedule:Schedule") == []
    assert plan.of_type("aws:lambda/function:Function") == []
    assert plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup")


# --- components ------------------------------------------------------------------------------------

COMPONENTS = {  # logical name -> type token; renaming one would replace everything under it
    "kms": "taly:security:Kms", "network": "taly:network:Network", "storage": "taly:storage:Storage",
    "secrets": "taly:security:Secrets", "cluster": "taly:cluster:Cluster", "database": "taly:database:Database",
    "cache": "taly:cache:Cache", "broker": "taly:broker:Broker", "parameters": "taly:config:Parameters",
    "service-roles": "taly:identity:ServiceRoles", "backup": "taly:backup:Backup", "edge": "taly:edge:Edge",
    "observability": "taly:observability:Observability", "workloads": "taly:workloads:Workloads",
}


def test_every_component_takes_name_args_opts():
    """The shape of every Pulumi component library: the caller names the component."""
    import importlib
    import inspect
    import pkgutil

    import pulumi

    import taly_platform.components as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for cls in vars(module).values():
            if isinstance(cls, type) and issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__:
                assert list(inspect.signature(cls.__init__).parameters) == ["self", "name", "args", "opts"], cls
                found.append(cls.__name__)
    assert len(found) == len(COMPONENTS) + 1  # + SecureBucket, which Storage names per bucket


@pytest.mark.parametrize("env", ENVS)
def test_component_names_and_urns_are_stable(plans, env):
    stack = f"urn:pulumi:{env}::taly::pulumi:pulumi:Stack"
    components = {r.name: r.urn for r in plans[env].resources if r.type in COMPONENTS.values()}
    assert components == {name: f"{stack}${token}::{name}" for name, token in COMPONENTS.items()}
    buckets = {r.urn for r in plans[env].resources if r.type == "taly:storage:SecureBucket"}
    assert f"urn:pulumi:{env}::taly::taly:storage:Storage$taly:storage:SecureBucket::taly-{env}-media" in buckets
