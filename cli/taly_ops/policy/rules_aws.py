"""Rules over the AWS resources of a stack."""

from __future__ import annotations

import json
from typing import Iterable

from .model import StackView, Subject, Violation, rule

BUCKET = "aws:s3/bucket:Bucket"
RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
MQ = "aws:mq/broker:Broker"
STATEFUL = (RDS, REDIS, MQ, BUCKET, "aws:kms/key:Key", "aws:backup/vault:Vault", "aws:eks/cluster:Cluster")
WORLD = ("0.0.0.0/0", "::/0")


def _primaries(view: StackView) -> list[Subject]:
    return [r for r in view.of_type(RDS) if not r.props.get("replicateSourceDb")]


def _bucket_companion(view: StackView, type_token: str) -> Iterable[tuple[Subject, Subject | None]]:
    companions = view.keyed_by(type_token)
    for bucket in view.of_type(BUCKET):
        yield bucket, companions.get(bucket.props.get("bucket"))


# --- storage ---------------------------------------------------------------------------------------

@rule("s3-encryption-kms", "mandatory", "Every bucket encrypts with SSE-KMS by default.",
      "Data at rest under a customer-managed key can be audited and revoked.")
def _s3_kms(view):
    for bucket, sse in _bucket_companion(view, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        rules = (sse.props.get("rules") or [{}]) if sse else [{}]
        default = rules[0].get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") != "aws:kms":
            yield Violation(bucket.name, "no default SSE-KMS encryption")


@rule("s3-public-access-blocked", "mandatory", "Every bucket has all four public-access blocks on.",
      "A bucket is never public; media reaches users through signed URLs or a CDN.")
def _s3_public(view):
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket, pab in _bucket_companion(view, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        missing = [k for k in keys if not (pab and pab.props.get(k) is True)]
        if missing:
            yield Violation(bucket.name, f"public access not blocked: {', '.join(missing)}")


@rule("s3-tls-only", "mandatory", "Every bucket policy denies requests without TLS.",
      "Data in transit is encrypted; aws:SecureTransport=false is refused.")
def _s3_tls(view):
    for bucket, policy in _bucket_companion(view, "aws:s3/bucketPolicy:BucketPolicy"):
        statements = json.loads(policy.props["policy"]).get("Statement", []) if policy else []
        if not any(s.get("Effect") == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                   for s in statements):
            yield Violation(bucket.name, "no policy statement denying aws:SecureTransport=false")


@rule("s3-owner-enforced", "advisory", "Every bucket disables ACLs (BucketOwnerEnforced).",
      "ACLs are how buckets become public by accident; ownership controls switch them off.")
def _s3_owner(view):
    for bucket, own in _bucket_companion(view, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"):
        if not own or (own.props.get("rule") or {}).get("objectOwnership") != "BucketOwnerEnforced":
            yield Violation(bucket.name, "object ownership is not BucketOwnerEnforced")


@rule("s3-versioning", "mandatory", "Every bucket keeps versions.",
      "Versions are the undo of an overwrite or delete, and replication needs them.")
def _s3_versioning(view):
    for bucket, ver in _bucket_companion(view, "aws:s3/bucketVersioning:BucketVersioning"):
        if not ver or (ver.props.get("versioningConfiguration") or {}).get("status") != "Enabled":
            yield Violation(bucket.name, "versioning is not enabled")


# --- databases -------------------------------------------------------------------------------------

@rule("rds-encrypted", "mandatory", "RDS storage is encrypted with a KMS key.", "Encryption at rest on every data store.")
def _rds_encrypted(view):
    for db in view.of_type(RDS):
        if db.props.get("storageEncrypted") is not True or not db.props.get("kmsKeyId"):
            yield Violation(db.name, "storage not encrypted with a KMS key")


@rule("rds-private", "mandatory", "RDS instances are not publicly accessible.", "Databases live in private subnets only.")
def _rds_private(view):
    for db in view.of_type(RDS):
        if db.props.get("publiclyAccessible"):
            yield Violation(db.name, "publiclyAccessible is true")


@rule("rds-backup-retention", "mandatory", "RDS primaries keep automated backups >= 7 days (point-in-time recovery).",
      "The seeds' DR: 7-day retention and PITR give RPO well under an hour.")
def _rds_retention(view):
    for db in _primaries(view):
        days = db.props.get("backupRetentionPeriod") or 0
        if days < 7:
            yield Violation(db.name, f"backup retention {days:g} days (< 7): no point-in-time recovery window")


@rule("rds-tls-enforced", "mandatory", "RDS parameter groups force TLS (rds.force_ssl=1).", "TLS on every connection to a data store.")
def _rds_tls(view):
    groups = {g.props.get("name", g.name): g for g in view.of_type("aws:rds/parameterGroup:ParameterGroup")}
    for db in _primaries(view):
        group = groups.get(db.props.get("parameterGroupName"))
        params = {p.get("name"): str(p.get("value")) for p in (group.props.get("parameters") or [])} if group else {}
        if params.get("rds.force_ssl") != "1":
            yield Violation(db.name, "its parameter group does not set rds.force_ssl=1")


@rule("rds-prod-multi-az", "mandatory", "Prod RDS primaries are Multi-AZ.", "The seeds' HA: a zone failure is a failover, not an outage.")
def _rds_multi_az(view):
    if view.prod:
        for db in _primaries(view):
            if db.props.get("multiAz") is not True:
                yield Violation(db.name, "multiAz is not true in prod")


@rule("rds-prod-deletion-protection", "mandatory", "Prod RDS instances have deletion protection and a final snapshot.",
      "Nobody deletes the production database by accident.")
def _rds_deletion(view):
    if view.prod:
        for db in view.of_type(RDS):
            if db.props.get("deletionProtection") is not True:
                yield Violation(db.name, "deletionProtection is not true in prod")
        for db in _primaries(view):
            if db.props.get("skipFinalSnapshot", True):
                yield Violation(db.name, "skipFinalSnapshot is true in prod")


@rule("rds-performance-insights", "advisory", "RDS instances have Performance Insights on.", "On-call needs query-level evidence.")
def _rds_pi(view):
    for db in view.of_type(RDS):
        if not db.props.get("performanceInsightsEnabled"):
            yield Violation(db.name, "Performance Insights is off")


@rule("redis-encrypted", "mandatory", "Redis is encrypted at rest and in transit, with an AUTH token.",
      "Encryption at rest and TLS on every data store.")
def _redis_encrypted(view):
    for rg in view.of_type(REDIS):
        missing = [k for k in ("atRestEncryptionEnabled", "transitEncryptionEnabled") if rg.props.get(k) is not True]
        if missing:
            yield Violation(rg.name, f"not enabled: {', '.join(missing)}")
        if not rg.props.get("authToken"):
            yield Violation(rg.name, "no AUTH token")


@rule("redis-prod-multi-az", "mandatory", "Prod Redis has automatic failover across AZs.", "The seeds' HA: ElastiCache multi-AZ.")
def _redis_multi_az(view):
    if view.prod:
        for rg in view.of_type(REDIS):
            if not (rg.props.get("automaticFailoverEnabled") and rg.props.get("multiAzEnabled")):
                yield Violation(rg.name, "automatic failover / Multi-AZ is off in prod")


@rule("redis-snapshots", "advisory", "Redis keeps snapshots.", "A cache rebuilt from nothing is a thundering herd on the database.")
def _redis_snapshots(view):
    for rg in view.of_type(REDIS):
        if not rg.props.get("snapshotRetentionLimit"):
            yield Violation(rg.name, "snapshot retention is 0")


@rule("mq-private", "mandatory", "Amazon MQ brokers are not publicly accessible.", "The broker is reachable from the cluster only.")
def _mq_private(view):
    for b in view.of_type(MQ):
        if b.props.get("publiclyAccessible"):
            yield Violation(b.name, "publiclyAccessible is true")


@rule("mq-prod-multi-az", "mandatory", "Prod brokers run CLUSTER_MULTI_AZ.", "The seeds' HA: Amazon MQ multi-AZ.")
def _mq_multi_az(view):
    if view.prod:
        for b in view.of_type(MQ):
            if b.props.get("deploymentMode") != "CLUSTER_MULTI_AZ":
                yield Violation(b.name, f"deploymentMode {b.props.get('deploymentMode')} in prod")


@rule("mq-logs", "advisory", "Brokers ship general logs.", "On-call needs the broker's own account of an incident.")
def _mq_logs(view):
    for b in view.of_type(MQ):
        if not (b.props.get("logs") or {}).get("general"):
            yield Violation(b.name, "general logs are off")


@rule("prod-protected", "mandatory", "Prod stateful resources are protected (Pulumi `protect`).",
      "`pulumi destroy` or a refactor must never delete production data.")
def _protected(view):
    if view.prod:
        for r in view.of_type(*STATEFUL):
            if not r.protect:
                yield Violation(r.name, "stateful resource without protect=True in prod")


# --- keys, secrets, logs -------------------------------------------------------------------------

@rule("kms-rotation", "mandatory", "Customer-managed KMS keys rotate.", "Key material does not live forever.")
def _kms_rotation(view):
    for k in view.of_type("aws:kms/key:Key"):
        if k.props.get("enableKeyRotation") is not True:
            yield Violation(k.name, "key rotation is off")


@rule("secrets-kms", "mandatory", "Secrets Manager secrets use a customer-managed key.", "Secrets readable only by who may use the key.")
def _secrets_kms(view):
    for s in view.of_type("aws:secretsmanager/secret:Secret"):
        if not s.props.get("kmsKeyId"):
            yield Violation(s.name, "no kmsKeyId")


@rule("logs-encrypted", "mandatory", "CloudWatch log groups are KMS-encrypted and expire.", "Logs carry data too; encryption at rest on every log.")
def _logs(view):
    for g in view.of_type("aws:cloudwatch/logGroup:LogGroup"):
        if not g.props.get("kmsKeyId"):
            yield Violation(g.name, "no kmsKeyId")
        if not g.props.get("retentionInDays"):
            yield Violation(g.name, "kept forever (no retentionInDays)")


@rule("cloudtrail-on", "mandatory", "A multi-region CloudTrail with log-file validation and KMS exists.",
      "Every API call in the account is on the record (the seeds' security: CloudTrail).")
def _cloudtrail(view):
    trails = view.of_type("aws:cloudtrail/trail:Trail")
    if not trails:
        yield Violation("(stack)", "no CloudTrail trail")
    for t in trails:
        for key in ("isMultiRegionTrail", "enableLogFileValidation"):
            if not t.props.get(key):
                yield Violation(t.name, f"{key} is off")
        if not t.props.get("kmsKeyId"):
            yield Violation(t.name, "not KMS-encrypted")


# --- compute and network -------------------------------------------------------------------------

@rule("eks-private-endpoint", "mandatory", "The EKS API is private; a public endpoint needs an allow-list.",
      "The control plane is not on the internet.")
def _eks_private(view):
    for c in view.of_type("aws:eks/cluster:Cluster"):
        vpc = c.props.get("vpcConfig") or {}
        if not vpc.get("endpointPrivateAccess"):
            yield Violation(c.name, "private endpoint access is off")
        if vpc.get("endpointPublicAccess") and (not vpc.get("publicAccessCidrs") or set(vpc["publicAccessCidrs"]) & set(WORLD)):
            yield Violation(c.name, "public endpoint without an allow-list")


@rule("eks-logs-and-secrets", "mandatory", "EKS logs api/audit/authenticator and encrypts secrets with KMS.",
      "Who did what to the cluster is on the record; Kubernetes secrets are encrypted at rest.")
def _eks_logs(view):
    for c in view.of_type("aws:eks/cluster:Cluster"):
        missing = {"api", "audit", "authenticator"} - set(c.props.get("enabledClusterLogTypes") or [])
        if missing:
            yield Violation(c.name, f"control-plane logs off: {', '.join(sorted(missing))}")
        if "secrets" not in ((c.props.get("encryptionConfig") or {}).get("resources") or []):
            yield Violation(c.name, "Kubernetes secrets are not KMS-encrypted")


@rule("imdsv2-required", "mandatory", "Node launch templates require IMDSv2 and encrypt their disks.",
      "IMDSv1 lets a pod-level SSRF steal the node's credentials.")
def _imds(view):
    for t in view.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        if (t.props.get("metadataOptions") or {}).get("httpTokens") != "required":
            yield Violation(t.name, "IMDSv2 not required (httpTokens != required)")
        for m in t.props.get("blockDeviceMappings") or []:
            if str((m.get("ebs") or {}).get("encrypted")).lower() != "true":
                yield Violation(t.name, f"volume {m.get('deviceName')} not encrypted")


def _world_ingress(rules: list[dict]) -> list[dict]:
    return [r for r in rules if set(r.get("cidrBlocks") or []) & set(WORLD) or set(r.get("ipv6CidrBlocks") or []) & set(WORLD)]


@rule("sg-no-world-ingress", "mandatory", "No security group admits 0.0.0.0/0, except a load balancer on 443.",
      "Only the load balancer faces the internet, and only over TLS.")
def _sg_world(view):
    for sg in view.of_type("aws:ec2/securityGroup:SecurityGroup"):
        load_balancer = (sg.props.get("tags") or {}).get("role") == "load-balancer"
        for r in _world_ingress(sg.props.get("ingress") or []):
            if not (load_balancer and r.get("fromPort") == 443 and r.get("toPort") == 443):
                yield Violation(sg.name, f"ingress from the world on {r.get('fromPort')}-{r.get('toPort')}")
    for r in view.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:ec2/securityGroupRule:SecurityGroupRule"):
        cidrs = {r.props.get("cidrIpv4"), r.props.get("cidrIpv6"), *(r.props.get("cidrBlocks") or [])}
        if r.props.get("type", "ingress") == "ingress" and cidrs & set(WORLD) and r.props.get("fromPort") != 443:
            yield Violation(r.name, "ingress from the world")


RULES = [
    _s3_kms,
    _s3_public,
    _s3_tls,
    _s3_owner,
    _s3_versioning,
    _rds_encrypted,
    _rds_private,
    _rds_retention,
    _rds_tls,
    _rds_multi_az,
    _rds_deletion,
    _rds_pi,
    _redis_encrypted,
    _redis_multi_az,
    _redis_snapshots,
    _mq_private,
    _mq_multi_az,
    _mq_logs,
    _protected,
    _kms_rotation,
    _secrets_kms,
    _logs,
    _cloudtrail,
    _eks_private,
    _eks_logs,
    _imds,
    _sg_world,
]
