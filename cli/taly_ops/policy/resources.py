"""Type tokens and selectors the rules share: which resources are what, read the same way everywhere."""

from __future__ import annotations

from typing import Any, Iterable

from .model import StackView, Subject

BUCKET = "aws:s3/bucket:Bucket"
RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
MQ = "aws:mq/broker:Broker"
KMS_KEY = "aws:kms/key:Key"
VAULT = "aws:backup/vault:Vault"
BACKUP_PLAN = "aws:backup/plan:Plan"
EKS = "aws:eks/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
SUBNET = "aws:ec2/subnet:Subnet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
STATEFUL = (RDS, REDIS, MQ, BUCKET, KMS_KEY, VAULT, EKS)
WORLD = ("0.0.0.0/0", "::/0")


def number(value: Any, default: float = 0) -> float:
    """A numeric input as a number (the plan may carry 7 or 7.0; a missing one is `default`)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def rds_primaries(view: StackView) -> list[Subject]:
    return [r for r in view.of_type(RDS) if not r.props.get("replicateSourceDb")]


def rds_replicas_of(view: StackView, primary: Subject) -> list[Subject]:
    ids = {primary.props.get("identifier"), primary.name}
    return [r for r in view.of_type(RDS) if r.props.get("replicateSourceDb") in ids
            or str(r.props.get("replicateSourceDb", "")).endswith(f":{primary.props.get('identifier')}")]


def bucket_companions(view: StackView, type_token: str) -> Iterable[tuple[Subject, Subject | None]]:
    """Each bucket with the resource of `type_token` that configures it (public-access block, SSE, ...)."""
    companions = view.keyed_by(type_token)
    for bucket in view.of_type(BUCKET):
        yield bucket, companions.get(bucket.props.get("bucket"))


def purpose(r: Subject) -> str | None:
    """The `purpose` tag the estate puts on buckets and keys (media, backups, logs, backups-dr)."""
    return (r.props.get("tags") or {}).get("purpose")

