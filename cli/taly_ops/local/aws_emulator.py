"""An AWS API emulator (moto_server) seeded with the local environment's records.

The records are shaped like what the Pulumi program creates for a real environment: KMS keys per
purpose, a VPC, an EKS cluster and its OIDC provider, service roles, an RDS PostgreSQL instance and a
read replica, an ElastiCache replication group, an MQ broker, Secrets Manager credentials, the media,
backups and logs buckets (versioned, KMS-encrypted, every public-access block on, media lifecycle),
a backup vault and plan, a web ACL, an alarm topic and SSM parameters per service. The resulting
contract (an EnvironmentContract) points its endpoints at the local servers (Prometheus included),
its ids and ARNs at the emulator.
"""

from __future__ import annotations

import json
import signal
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

from ..adapters.aws import Aws, AwsTarget
from .context import DATABASE, DR_REGION, ENVIRONMENT, HOST, REGION, USER, Context
from .state import Component
from . import supervisor

ACCESS_KEY, SECRET_KEY = "testing", "testing"  # the emulator accepts any credentials
PREFIX = f"taly-{ENVIRONMENT}"
KMS_PURPOSES = ("data", "eks", "backup", "logs")


def binary() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.is_file() else shutil.which("moto_server")


def preflight() -> list[tuple[str, str]]:
    if not binary():
        return [("moto_server is not installed next to this Python", "pip install 'moto[server]'")]
    return []


def endpoint(port: int) -> str:
    return f"http://{HOST}:{port}"


def target(endpoint_url: str) -> AwsTarget:
    """The emulator as an AWS target: its endpoint, the local region, dummy credentials."""
    return AwsTarget(REGION, endpoint_url, ACCESS_KEY, SECRET_KEY)


def client(service: str, endpoint_url: str):
    """A client of the emulator (through the AWS adapter, as every client is)."""
    return Aws(target(endpoint_url)).client(service)


def parameter_prefix(service: str | None = None) -> str:
    """As taly_platform.components.secrets.parameter_prefix, for the local environment."""
    return f"/taly/{ENVIRONMENT}/" + (f"{service}/" if service else "")


def spawn(port: int, log: Path, cwd: Path) -> supervisor.Spawned:
    """moto_server on 127.0.0.1:port, in its own session (the estate's emulator, and the tests' own)."""
    return supervisor.spawn([binary(), "-H", HOST, "-p", str(port)], log=log, cwd=cwd)


def start(ctx: Context) -> None:
    port = ctx.ports["moto"]
    log = ctx.log("moto")
    spawned = spawn(port, log, ctx.state_dir)
    url = endpoint(port)
    ctx.record("moto", spawned, port, log, host=HOST, endpoint_url=url, region=REGION)
    ctx.wait(lambda: supervisor.port_open(port), component="moto", what="listening port", timeout=30, log=log,
             pid=spawned.pid)
    ctx.say("moto", f"ready on {url}; seeding the local environment's AWS records")
    try:
        ctx.state.contract = seed(url, ctx.ports, ctx.passwords, check=lambda: ctx.check_cancel("moto"))
    except (supervisor.StartFailed, supervisor.Cancelled):
        raise
    except Exception as exc:  # botocore's errors: one line, and the server log
        raise supervisor.StartFailed("moto", f"seeding failed: {type(exc).__name__}: {exc}", log) from None
    ctx.state.save()
    ctx.say("moto", "seeded (RDS, ElastiCache, MQ, EKS, S3, Secrets Manager, SSM, KMS, SNS)")
    if problems := contract_problems(ctx.state.contract):
        # The estate still works; the state file's contract just lags the model (the tests catch this).
        ctx.say("moto", f"warning: the local contract is not a valid EnvironmentContract: {problems}")


def restart(ctx: Context, dead: set[str]) -> None:
    """moto keeps its records in memory: a restarted emulator is seeded again (new ARNs, empty buckets)."""
    if "moto" in dead:
        ctx.say("moto", "was stopped: its records and the buckets' objects went with it; starting and seeding it again")
        start(ctx)


def seed(url: str, ports: dict[str, int], passwords: dict[str, str],
         check: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Create the records; returns the contract, shaped like an EnvironmentContract.

    check() runs between services: it raises to abandon the seeding (another component failed).
    """
    from taly_platform.catalog import CATALOG
    from taly_platform.config import BackupConfig

    aws = Aws(target(url))

    def client_(service: str):
        return aws.client(service)

    tags = {"project": "taly", "environment": ENVIRONMENT, "owner": "local", "managed-by": "taly-local"}
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    account = client_("sts").get_caller_identity()["Account"]

    kms = client_("kms")
    keys = {}
    for purpose in KMS_PURPOSES:
        key = kms.create_key(Description=f"{PREFIX} {purpose}", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])
        arn = key["KeyMetadata"]["Arn"]
        kms.enable_key_rotation(KeyId=key["KeyMetadata"]["KeyId"])
        kms.create_alias(AliasName=f"alias/{PREFIX}-{purpose}", TargetKeyId=key["KeyMetadata"]["KeyId"])
        keys[purpose] = arn

    check()
    ec2 = client_("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": tag_list + [{"Key": "Name", "Value": PREFIX}]}])["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("abc")
    ]

    check()
    iam = client_("iam")
    cluster_role = iam.create_role(RoleName=f"{PREFIX}-eks-cluster", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}), Tags=tag_list)["Role"]["Arn"]
    eks = client_("eks")
    cluster = eks.create_cluster(
        name=PREFIX, version="1.30", roleArn=cluster_role, tags=tags,
        resourcesVpcConfig={"subnetIds": subnets, "endpointPublicAccess": False, "endpointPrivateAccess": True},
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": keys["eks"]}}],
    )["cluster"]
    issuer = (cluster.get("identity") or {}).get("oidc", {}).get("issuer") or f"https://oidc.eks.{REGION}.amazonaws.com/id/LOCAL"
    oidc = iam.create_open_id_connect_provider(
        Url=issuer, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    )["OpenIDConnectProviderArn"]
    issuer_host = issuer.removeprefix("https://")
    roles = {}
    for svc in CATALOG:
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": oidc}, "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{issuer_host}:sub": f"system:serviceaccount:taly:{svc.name}",
                                           f"{issuer_host}:aud": "sts.amazonaws.com"}}}]}
        roles[svc.name] = iam.create_role(RoleName=f"{PREFIX}-{svc.name}", AssumeRolePolicyDocument=json.dumps(trust),
                                          Tags=tag_list + [{"Key": "service", "Value": svc.name}])["Role"]["Arn"]

    check()
    sm = client_("secretsmanager")
    secret_values = {
        "database": {"username": USER, "password": passwords["postgres"]},
        "cache": {"password": passwords["redis"]},
        "broker": {"username": USER, "password": passwords["rabbitmq"]},
    }
    secret_arns = {
        purpose: sm.create_secret(Name=f"taly/{ENVIRONMENT}/{purpose}/credentials", KmsKeyId=keys["data"],
                                  SecretString=json.dumps(value), Tags=tag_list + [{"Key": "purpose", "Value": purpose}])["ARN"]
        for purpose, value in secret_values.items()
    }

    check()
    rds = client_("rds")
    db_id, replica_id = f"{PREFIX}-db", f"{PREFIX}-db-replica-1"
    # As database.py: the subnet group, and a drill-only security group (no ingress, no egress) that
    # restore drills put their scratch instance in.
    subnet_group = rds.create_db_subnet_group(
        DBSubnetGroupName=f"{PREFIX}-postgres", DBSubnetGroupDescription="Taly local database subnets",
        SubnetIds=subnets, Tags=tag_list)["DBSubnetGroup"]["DBSubnetGroupName"]
    drill_sg = ec2.create_security_group(
        GroupName=f"{PREFIX}-postgres-drill", VpcId=vpc,
        Description=("Restore drills only: scratch PostgreSQL restored from a snapshot or a point in time; "
                     "no access from the cluster"),
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": tag_list + [{"Key": "Name", "Value": f"{PREFIX}-postgres-drill"},
                                                {"Key": "purpose", "Value": "restore-drill"}]}])["GroupId"]
    ec2.revoke_security_group_egress(GroupId=drill_sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rds.create_db_instance(
        DBInstanceIdentifier=db_id, Engine="postgres", EngineVersion="15.7", DBInstanceClass="db.t4g.medium",
        AllocatedStorage=20, MasterUsername=USER, MasterUserPassword=passwords["postgres"], DBName=DATABASE,
        Port=ports["postgres-primary"], MultiAZ=False, StorageEncrypted=True, KmsKeyId=keys["data"],
        BackupRetentionPeriod=7, DeletionProtection=False, DBSubnetGroupName=subnet_group, PubliclyAccessible=False,
        Tags=tag_list,
    )
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier=replica_id, SourceDBInstanceIdentifier=db_id, DBInstanceClass="db.t4g.medium",
        Port=ports["postgres-replica"], Tags=tag_list,
    )

    check()
    cache = client_("elasticache").create_replication_group(
        ReplicationGroupId=f"{PREFIX}-cache", ReplicationGroupDescription="Taly local cache", Engine="redis",
        EngineVersion="7.0", CacheNodeType="cache.t4g.micro", NumCacheClusters=2, AutomaticFailoverEnabled=True,
        Port=ports["redis-primary"], TransitEncryptionEnabled=True, AtRestEncryptionEnabled=True, KmsKeyId=keys["data"],
        AuthToken=passwords["redis"], Tags=tag_list,
    )["ReplicationGroup"]

    check()
    broker = client_("mq").create_broker(
        BrokerName=f"{PREFIX}-mq", EngineType="RABBITMQ", EngineVersion="3.13", HostInstanceType="mq.t3.micro",
        DeploymentMode="SINGLE_INSTANCE", PubliclyAccessible=False, AutoMinorVersionUpgrade=True,
        Users=[{"Username": USER, "Password": passwords["rabbitmq"]}], Tags=tags,
    )

    check()
    s3 = client_("s3")
    buckets = {kind: f"{PREFIX}-{kind}-{account}" for kind in ("media", "backups", "logs")}
    bucket_keys = {"media": keys["data"], "backups": keys["backup"], "logs": keys["logs"]}
    for kind, name in buckets.items():
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": bucket_keys[kind]},
            "BucketKeyEnabled": True}]})
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list})
        # No deny-non-TLS bucket policy here, unlike AWS (see storage.SecureBucket): the emulator
        # speaks plain HTTP on loopback and moto applies that Deny to every request, so the local
        # backups bucket could hold nothing.
    s3.put_bucket_lifecycle_configuration(Bucket=buckets["media"], LifecycleConfiguration={"Rules": [{
        "ID": "media-tiering", "Status": "Enabled", "Filter": {"Prefix": ""},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]})

    check()
    backup = client_("backup")
    vault = f"{PREFIX}-vault"
    backup.create_backup_vault(BackupVaultName=vault, EncryptionKeyArn=keys["backup"], BackupVaultTags=tags)
    plan_id = backup.create_backup_plan(BackupPlan={"BackupPlanName": PREFIX, "Rules": [{
        "RuleName": "hourly", "TargetBackupVaultName": vault, "ScheduleExpression": "cron(0 * * * ? *)",
        "Lifecycle": {"DeleteAfterDays": 35}}]}, BackupPlanTags=tags)["BackupPlanId"]

    check()
    web_acl = client_("wafv2").create_web_acl(
        Name=PREFIX, Scope="REGIONAL", DefaultAction={"Allow": {}}, Rules=[],
        VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": PREFIX},
    )["Summary"]["ARN"]

    settings = {
        "DATABASE_HOST": HOST, "DATABASE_READER_HOSTS": f"{HOST}:{ports['postgres-replica']}",
        "DATABASE_PORT": str(ports["postgres-primary"]), "DATABASE_NAME": DATABASE,
        "REDIS_HOST": HOST, "REDIS_PORT": str(ports["redis-primary"]),
        "AMQP_ENDPOINT": f"amqp://{HOST}:{ports['amqp']}", "MEDIA_BUCKET": buckets["media"],
    }
    uses = {"database": ("DATABASE_HOST", "DATABASE_READER_HOSTS", "DATABASE_PORT", "DATABASE_NAME"),
            "cache": ("REDIS_HOST", "REDIS_PORT"), "broker": ("AMQP_ENDPOINT",)}
    check()
    ssm = client_("ssm")
    for svc in CATALOG:
        values = {"LOG_LEVEL": "debug", "PORT": str(svc.port)}
        for need, keys_needed in uses.items():
            if getattr(svc, need):
                values |= {k: settings[k] for k in keys_needed}
        if svc.media != "none":
            values["MEDIA_BUCKET"] = settings["MEDIA_BUCKET"]
        for key, value in values.items():
            ssm.put_parameter(Name=f"{parameter_prefix(svc.name)}{key}", Value=value, Type="String", Overwrite=True)

    check()
    alarm_topic = client_("sns").create_topic(
        Name=f"{PREFIX}-alarms", Attributes={"KmsMasterKeyId": "alias/aws/sns"}, Tags=tag_list)["TopicArn"]

    contract = dict(
        environment=ENVIRONMENT, region=REGION, dr_region=DR_REGION, account_id=account, vpc_id=vpc,
        cluster={"name": cluster["name"], "endpoint": cluster.get("endpoint") or "", "oidc_provider_arn": oidc,
                 "namespace": "taly", "kube_context": PREFIX},
        # Endpoints are the local servers; a replica's carries its own port, which differs from `port`.
        database={"primary_id": db_id, "primary_endpoint": HOST, "port": ports["postgres-primary"], "database": DATABASE,
                  "replica_ids": [replica_id], "replica_endpoints": [f"{HOST}:{ports['postgres-replica']}"],
                  "multi_az": False, "master_secret_arn": secret_arns["database"],
                  "subnet_group_name": subnet_group, "drill_security_group_id": drill_sg},
        cache={"replication_group_id": cache["ReplicationGroupId"], "primary_endpoint": HOST,
               "reader_endpoint": f"{HOST}:{ports['redis-replica']}", "port": ports["redis-primary"],
               "automatic_failover": True, "auth_secret_arn": secret_arns["cache"]},
        broker={"broker_id": broker["BrokerId"], "broker_name": f"{PREFIX}-mq", "deployment_mode": "SINGLE_INSTANCE",
                "credentials_secret_arn": secret_arns["broker"]},
        buckets=buckets,
        # The targets every stack starts from (BackupConfig's defaults: the seeds' RPO 1 h, RTO 15 min).
        backup={"vault_name": vault, "plan_id": plan_id, "rpo_minutes": BackupConfig().rpo_minutes,
                "rto_minutes": BackupConfig().rto_minutes},
        kms_keys=keys, service_roles=roles, web_acl_arn=web_acl, parameter_prefix=parameter_prefix(),
        prometheus_endpoint=f"http://{HOST}:{ports['prometheus']}/", alarm_topic_arn=alarm_topic,
    )
    return contract


def contract_problems(contract: dict[str, Any]) -> str | None:
    """Why contract is not a valid EnvironmentContract (the contract grew a field this module does not fill), or None."""
    from pydantic import ValidationError
    from taly_platform.contract import EnvironmentContract

    try:
        EnvironmentContract(**contract)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return None


def stop(component: Component) -> bool:
    """SIGKILL: moto holds its records in memory only, and is stopped only when they are to go (1-3 s saved)."""
    return supervisor.stop(component.pid, component.start_time, pgid=component.pgid, sig=signal.SIGKILL, timeout=5)
