"""Typed stack configuration: everything an environment may vary, validated before any resource.

The stack files (`stacks/Pulumi.<env>.yaml`) hold environment differences; the components never
branch on the environment's name. This module is pure pydantic (no Pulumi import) so the ops CLI
can load and compare stack files cheaply.
"""

from __future__ import annotations

import ipaddress
import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .quoting import quote
from .values import CpuQuantity, Days, MemoryQuantity, cidr_block, mebibytes, millicores, runs_at_least_daily

ENVIRONMENTS = ("dev", "staging", "prod")
PROJECT = "taly"


class _Model(BaseModel):
    """Stack-file keys are camelCase (Pulumi's convention); Python sees snake_case."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class NatMode(str, Enum):
    single = "single"
    one_per_az = "onePerAz"


def _d(description: str, **kw) -> Any:
    """A field with its description: what `docs/stack-config.md` says about the stack key."""
    return Field(description=description, **kw)


class NetworkConfig(_Model):
    """VPC layout. Subnets are carved from `cidr`: public /24s, private /20s, database /24s."""

    cidr: str = _d("The VPC's IPv4 CIDR block, /16 or larger (public, private and database subnets are carved from it).",
                   default="10.0.0.0/16")
    availability_zones: list[str] = _d("Zones of the stack's region the subnets span, distinct; prod uses 3 "
                                       "(policy `vpc-prod-multi-az`), a Multi-AZ broker needs 3.",
                                       min_length=2, max_length=3)
    nat_gateways: NatMode = _d("`onePerAz` (a zone's loss keeps the others' egress) or `single` (cheaper, dev).",
                               default=NatMode.one_per_az)
    flow_log_retention_days: Days = _d("Days the VPC flow logs (all traffic) are kept.", default=90)

    @field_validator("cidr")
    @classmethod
    def _size(cls, v: str) -> str:
        """`cidr` is an IPv4 CIDR block of /16 or larger."""
        v = cidr_block(v)
        if ipaddress.ip_network(v).prefixlen > 16:
            raise ValueError("must be a /16 or larger to hold public, private and database subnets")
        return v

    @field_validator("availability_zones")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        """`availabilityZones` are distinct."""
        if len(set(v)) != len(v):
            raise ValueError("availability zones must be distinct")
        return v


class NodeGroupConfig(_Model):
    """One EKS managed node group (nodes come from a launch template: IMDSv2, encrypted disks)."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")] = _d("The node group's name (a DNS label).")
    instance_types: list[str] = _d("EC2 instance types the group may use, e.g. [m6i.xlarge].", min_length=1)
    capacity_type: Literal["ON_DEMAND", "SPOT"] = _d("On-demand or spot nodes.", default="ON_DEMAND")
    min_size: Annotated[int, Field(ge=0, le=100)] = _d("Fewest nodes; prod keeps at least 3 (policy `eks-prod-nodes-multi-az`).")
    desired_size: Annotated[int, Field(ge=0, le=100)] = _d("Nodes at creation; afterwards the cluster autoscaler owns it.")
    max_size: Annotated[int, Field(ge=1, le=100)] = _d("Most nodes.")
    disk_size_gib: Annotated[int, Field(ge=20, le=1000)] = _d("Each node's root volume (gp3, KMS-encrypted).", default=50)

    @model_validator(mode="after")
    def _ordered(self) -> "NodeGroupConfig":
        """minSize <= desiredSize <= maxSize."""
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("node group sizes must satisfy minSize <= desiredSize <= maxSize")
        return self


class ClusterConfig(_Model):
    """The EKS cluster: private API endpoint, control-plane logs, KMS-encrypted secrets."""

    version: Annotated[str, Field(pattern=r"^1\.(2[89]|3[0-9])$")] = _d("Kubernetes version of the control plane.",
                                                                        default="1.33")
    endpoint_public_access: bool = _d("Also expose the API endpoint publicly (needs `publicAccessCidrs`).", default=False)
    public_access_cidrs: list[str] = _d("Networks allowed to reach a public API endpoint; never 0.0.0.0/0.", default=[])
    log_retention_days: Days = _d("Days the control-plane logs (api, audit, authenticator) are kept.", default=90)
    node_groups: list[NodeGroupConfig] = _d("The managed node groups (at least one).", min_length=1)

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        """`publicAccessCidrs` are CIDR blocks, never 0.0.0.0/0."""
        out = [cidr_block(c) for c in v]
        if "0.0.0.0/0" in out:
            raise ValueError("0.0.0.0/0 is not an allow-list; name the networks that may reach the API")
        return out

    @model_validator(mode="after")
    def _allow_list(self) -> "ClusterConfig":
        """`endpointPublicAccess: true` needs `publicAccessCidrs`."""
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError("endpointPublicAccess needs publicAccessCidrs (an allow-list)")
        return self


class DatabaseConfig(_Model):
    """RDS PostgreSQL: the primary, its read replicas, backups and protection."""

    engine_version: Annotated[str, Field(pattern=r"^1[5-7](\.\d+)?$")] = _d("PostgreSQL version (15, 16 or 17, optionally minor).",
                                                                            default="15.10")
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = _d("RDS instance class of the primary and replicas.")
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = _d("Storage at creation (gp3).", default=50)
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = _d(
        "Ceiling of storage autoscaling; >= allocatedStorageGib (policy `rds-storage-autoscaling` wants it above).", default=200)
    multi_az: bool = _d("A synchronous standby in another zone with automatic failover; on in prod (policy `rds-prod-multi-az`).",
                        default=True)
    read_replicas: Annotated[int, Field(ge=0, le=5)] = _d(
        "Read replicas of the primary; prod keeps at least one to fail over to (policy `rds-prod-read-replica`).", default=0)
    backup_retention_days: Annotated[int, Field(ge=7, le=35)] = _d(
        "Days of automated backups and point-in-time recovery (the seeds: 7 at least).", default=7)
    backup_window: str = _d("Daily UTC window of the automated backup (hh:mm-hh:mm).", default="02:00-03:00")
    maintenance_window: str = _d("Weekly UTC maintenance window (ddd:hh:mm-ddd:hh:mm).", default="sun:03:30-sun:04:30")
    deletion_protection: bool = _d("RDS refuses to delete the instances; on in prod (policy `rds-prod-deletion-protection`).",
                                   default=True)
    final_snapshot: bool = _d("Take a final snapshot when the primary is deleted.", default=True)
    performance_insights_retention_days: Literal[7, 31, 93, 186, 372, 731] = _d(
        "Days Performance Insights keeps its data (the values RDS accepts).", default=7)
    cross_region_backup_replication: bool = _d(
        "Replicate automated backups to `drRegion`; on in prod (policy `rds-prod-cross-region-backups`).", default=False)
    database_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = _d("The application database's name.",
                                                                                 default="taly")
    max_connections: Annotated[int, Field(ge=20, le=10000)] = _d(
        "PostgreSQL max_connections; the connections alarm fires at 90 % of it.", default=400)
    drill_client_cidrs: list[str] = _d(
        "Private networks (the ops runners) allowed to reach a restore drill's scratch instance on 5432; empty: nobody, "
        "and a cloud drill cannot verify.", default=[])

    @field_validator("drill_client_cidrs")
    @classmethod
    def _drill_cidrs(cls, v: list[str]) -> list[str]:
        """`drillClientCidrs` are distinct private CIDR blocks."""
        out = [cidr_block(c) for c in v]
        public = [c for c in out if not ipaddress.ip_network(c).is_private]
        if public:
            raise ValueError(f"{', '.join(public)}: drill clients must be private networks "
                             "(the drill instance is never publicly accessible)")
        if len(set(out)) != len(out):
            raise ValueError("drill client CIDRs must be distinct")
        return out

    @model_validator(mode="after")
    def _storage(self) -> "DatabaseConfig":
        """maxAllocatedStorageGib >= allocatedStorageGib."""
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("maxAllocatedStorageGib must be >= allocatedStorageGib")
        return self


class CacheConfig(_Model):
    """ElastiCache Redis: a replication group encrypted at rest and in transit, with AUTH."""

    engine_version: str = _d("Redis engine version.", default="7.1")
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = _d("ElastiCache node type.")
    replicas: Annotated[int, Field(ge=0, le=5)] = _d("Replicas of the primary node.", default=1)
    multi_az: bool = _d("Automatic failover across zones (needs a replica); on in prod (policy `redis-prod-multi-az`).",
                        default=True)
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = _d("Days ElastiCache keeps its daily snapshots.", default=7)
    snapshot_window: str = _d("Daily UTC window of ElastiCache's own snapshot.", default="01:00-02:00")
    hourly_snapshots: bool = _d(
        "A scheduled function snapshots the group every hour (the seeds' RDB every hour; policy `redis-hourly-snapshots`).",
        default=True)
    hourly_snapshot_retention_hours: Annotated[int, Field(ge=2, le=720)] = _d(
        "Hours the hourly snapshots are kept before the function deletes them.", default=48)

    @model_validator(mode="after")
    def _failover(self) -> "CacheConfig":
        """`multiAz: true` needs at least one replica."""
        if self.multi_az and self.replicas < 1:
            raise ValueError("multiAz (automatic failover) needs at least one replica")
        return self


class BrokerConfig(_Model):
    """Amazon MQ for RabbitMQ, private, general logs on."""

    engine_version: str = _d("RabbitMQ engine version.", default="3.13")
    deployment_mode: Literal["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"] = _d(
        "One broker, or a three-node cluster across zones (needs 3 zones); the cluster in prod (policy `mq-prod-multi-az`).")
    instance_type: Annotated[str, Field(pattern=r"^mq\.[a-z0-9]+\.[a-z0-9]+$")] = _d("Amazon MQ host instance type.")


class StorageConfig(_Model):
    """S3: the media, backups and logs buckets."""

    media_infrequent_access_days: Annotated[int, Field(ge=30)] = _d(
        "Day media moves to Standard-IA (the seeds: 30; S3's minimum is 30).", default=30)
    media_glacier_days: Annotated[int, Field(ge=31)] = _d(
        "Day media moves to Glacier, after Standard-IA (the seeds: 90).", default=90)
    noncurrent_version_expiry_days: Days = _d("Days an overwritten or deleted object's old version is kept.", default=90)
    log_expiry_days: Days = _d("Days objects (CloudTrail) are kept in the logs bucket.", default=365)
    backups_cross_region_replication: bool = _d(
        "Replicate the backups bucket to a bucket in `drRegion`; on in prod (policy `s3-prod-backups-replicated`).",
        default=False)

    @model_validator(mode="after")
    def _order(self) -> "StorageConfig":
        """mediaGlacierDays comes after mediaInfrequentAccessDays."""
        if self.media_glacier_days <= self.media_infrequent_access_days:
            raise ValueError("mediaGlacierDays must come after mediaInfrequentAccessDays")
        return self


class BackupConfig(_Model):
    """AWS Backup (a KMS vault and a plan over resources tagged taly:backup=true) and the recovery targets."""

    schedule: str = _d("When the backup plan runs: an AWS cron expression firing at least daily.",
                       default="cron(0 3 * * ? *)")
    retention_days: Annotated[int, Field(ge=7, le=3650)] = _d(
        "Days recovery points are kept (>= 7; prod >= 35, policy `backup-plan-retention`).", default=35)
    cross_region_copy: bool = _d(
        "Copy every recovery point to a vault in `drRegion`; on in prod (policy `backup-prod-cross-region-copy`).",
        default=False)
    copy_retention_days: Annotated[int, Field(ge=7, le=3650)] = _d("Days the copies in `drRegion` are kept.", default=35)
    rpo_minutes: Annotated[int, Field(ge=1, le=60)] = _d(
        "Recovery point objective drills measure against, in the contract (the seeds: under an hour).", default=60)
    rto_minutes: Annotated[int, Field(ge=1, le=15)] = _d(
        "Recovery time objective drills measure against, in the contract (the seeds: under 15 minutes).", default=15)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        """`schedule` is an AWS cron expression that fires at least daily."""
        if not re.fullmatch(r"cron\((\S+ ){5}\S+\)", v):
            raise ValueError("must be an AWS cron expression, e.g. cron(0 3 * * ? *)")
        if not runs_at_least_daily(v):
            raise ValueError("must run at least daily (day-of-month, month and day-of-week '*' or '?'): "
                             "the seeds' daily automated backups")
        return v


class EdgeConfig(_Model):
    """The WAF in front of the public API, and CloudTrail."""

    rate_limit_per_minute: Annotated[int, Field(ge=10, le=100)] = _d(
        "Requests a minute one client IP may make before the WAF blocks it (the seeds: 100 per user; WAF's minimum is 10).",
        default=100)
    trail_retention_days: Days = _d("Days the WAF's log group is kept.", default=365)
    managed_rule_groups: list[str] = _d(
        "AWS managed rule groups the web ACL runs, blocking; the core and known-bad-inputs sets are required "
        "(policy `waf-managed-rules`).",
        default=["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet",
                 "AWSManagedRulesAmazonIpReputationList"])


class ServiceSizing(_Model):
    """One service's replicas (its HorizontalPodAutoscaler) and container resources."""

    min_replicas: Annotated[int, Field(ge=1, le=100)] = _d("Fewest pods (prod: >= 3, policy `k8s-prod-hpa-min`).", default=1)
    max_replicas: Annotated[int, Field(ge=1, le=100)] = _d("Most pods (prod: >= 20, policy `k8s-prod-hpa-max`).", default=3)
    cpu_target_percent: Annotated[int, Field(ge=10, le=100)] = _d(
        "CPU utilisation (% of requests) the HPA scales at (the seeds: 70; policy `k8s-hpa-targets`).", default=70)
    memory_target_percent: Annotated[int, Field(ge=10, le=100)] = _d(
        "Memory utilisation (% of requests) the HPA scales at (the seeds: 80; policy `k8s-hpa-targets`).", default=80)
    cpu_request: CpuQuantity = _d("CPU request per container (250m, 1, 1.5).", default="100m")
    cpu_limit: CpuQuantity = _d("CPU limit per container, >= the request.", default="500m")
    memory_request: MemoryQuantity = _d("Memory request per container (Mi or Gi).", default="128Mi")
    memory_limit: MemoryQuantity = _d("Memory limit per container, >= the request.", default="512Mi")

    @model_validator(mode="after")
    def _range(self) -> "ServiceSizing":
        """maxReplicas >= minReplicas; cpuRequest <= cpuLimit; memoryRequest <= memoryLimit."""
        if self.max_replicas < self.min_replicas:
            raise ValueError("maxReplicas must be >= minReplicas")
        # Kubernetes rejects a pod whose request exceeds its limit; say so here, not at rollout time.
        if millicores(self.cpu_request) > millicores(self.cpu_limit):
            raise ValueError(f"cpuRequest {self.cpu_request} must be <= cpuLimit {self.cpu_limit}")
        if mebibytes(self.memory_request) > mebibytes(self.memory_limit):
            raise ValueError(f"memoryRequest {self.memory_request} must be <= memoryLimit {self.memory_limit}")
        return self


class AccessConfig(_Model):
    """IAM role ARNs mapped to the cluster's Kubernetes groups through EKS access entries."""

    platform: list[str] = _d("Roles with every right in the services' namespace (group taly:platform).", default=[])
    oncall: list[str] = _d("Roles that read, restart and scale (group taly:oncall).", default=[])
    ci: list[str] = _d("Roles that roll images (group taly:ci).", default=[])


class ServicesConfig(_Model):
    """The CMS services, deployed from charts/taly-service."""

    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = _d(
        "Kubernetes namespace of the services (Pod Security: restricted).", default="taly")
    image_registry: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*$")] = _d(
        "Where CI pushes images (`<registry>/<service>:<tag>`).", default="123456789012.dkr.ecr.eu-west-1.amazonaws.com/taly")
    initial_image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = _d(
        "Image tag of the first deploy, never 'latest'; afterwards releases belong to `taly promote` and `pulumi up` "
        "ignores image changes.", default="0.1.0")
    ingress_host: str = _d("Host name of the public API (the api-gateway Ingress).", default="api.taly.example")
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws:acm:")] = _d(
        "ACM certificate of the public API's load balancer.", default="arn:aws:acm:eu-west-1:123456789012:certificate/replace-me")
    access: AccessConfig = _d("Who may use the cluster (EKS access entries).", default=AccessConfig())
    sizing: ServiceSizing = _d("Replicas and resources of every service.", default=ServiceSizing())
    overrides: dict[str, ServiceSizing] = _d("Sizing of named services instead of `sizing` (keys: the catalog's services).",
                                             default={})
    log_level: Literal["debug", "info", "warn", "error"] = _d("The services' LOG_LEVEL.", default="info")

    @field_validator("overrides")
    @classmethod
    def _known(cls, v: dict[str, ServiceSizing]) -> dict[str, ServiceSizing]:
        """`overrides` name services of the catalog."""
        from .catalog import SERVICE_NAMES

        unknown = sorted(set(v) - set(SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {list(SERVICE_NAMES)}")
        return v

    @field_validator("initial_image_tag")
    @classmethod
    def _pinned(cls, v: str) -> str:
        """`initialImageTag` is never 'latest'."""
        if v.lower() == "latest":
            raise ValueError("image tags are pinned versions, never 'latest'")
        return v

    def sizing_for(self, service: str) -> ServiceSizing:
        return self.overrides.get(service, self.sizing)


class PolicyExemption(_Model):
    """A policy rule waived in this environment, always with a reason (shown in every report)."""

    rule: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] = _d("The rule's id (`taly policy list`).")
    resources: list[str] = _d("Logical names of the resources waived; empty: the whole environment.", default=[])
    reason: Annotated[str, Field(min_length=10)] = _d("Why, for everyone who reads the report (10 characters at least).")


class PolicyConfig(_Model):
    """The policy pack's exemptions for this environment."""

    exemptions: list[PolicyExemption] = _d("Rules waived here, each with a reason.", default=[])


class ProtectionConfig(_Model):
    """`protect=True` on stateful resources (Pulumi refuses to delete them)."""

    protect_stateful: bool = _d("Protect RDS, Redis, MQ, buckets, keys, vaults and EKS; on in prod (policy `prod-protected`).",
                                default=True)


class StackConfig(_Model):
    """One environment's settings, as read from `stacks/Pulumi.<env>.yaml`."""

    environment: Literal["dev", "staging", "prod"] = _d("The stack's name (not a key: Pulumi's stack).")
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = _d("The AWS region of the estate.")
    dr_region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = _d(
        "The disaster-recovery region backups are copied to; not the stack's region.")
    owner: str = _d("The `owner` tag on every resource.", default="platform")
    network: NetworkConfig = _d("The VPC.")
    cluster: ClusterConfig = _d("EKS.")
    database: DatabaseConfig = _d("RDS PostgreSQL.")
    cache: CacheConfig = _d("ElastiCache Redis.")
    broker: BrokerConfig = _d("Amazon MQ for RabbitMQ.")
    storage: StorageConfig = _d("S3 buckets.", default=StorageConfig())
    backup: BackupConfig = _d("AWS Backup and the recovery targets.", default=BackupConfig())
    edge: EdgeConfig = _d("WAF and CloudTrail.", default=EdgeConfig())
    services: ServicesConfig = _d("The CMS services on the cluster.", default=ServicesConfig())
    protection: ProtectionConfig = _d("Deletion protection in Pulumi.", default=ProtectionConfig())
    policy: PolicyConfig = _d("Policy exemptions.", default=PolicyConfig())

    @model_validator(mode="after")
    def _coherent(self) -> "StackConfig":
        """`drRegion` differs from `aws:region`; the zones are in `aws:region`; a CLUSTER_MULTI_AZ broker needs 3 zones."""
        if self.dr_region == self.region:
            raise ValueError("drRegion must differ from the stack's aws:region")
        for az in self.network.availability_zones:
            if not az.startswith(self.region):
                raise ValueError(f"availability zone {quote(az)} is not in region {quote(self.region)}")
        if self.broker.deployment_mode == "CLUSTER_MULTI_AZ" and len(self.network.availability_zones) < 3:
            raise ValueError("broker CLUSTER_MULTI_AZ needs three availability zones")
        return self

    @property
    def name_prefix(self) -> str:
        return f"{PROJECT}-{self.environment}"

    @property
    def tags(self) -> dict[str, str]:
        return {"project": PROJECT, "environment": self.environment, "owner": self.owner, "managed-by": "pulumi"}


# Stack-file key (in Pulumi's `namespace:key` form) for each top-level field of StackConfig.
STACK_KEYS: dict[str, str] = {"region": "aws:region"} | {
    name: f"{PROJECT}:{field.alias}"
    for name, field in StackConfig.model_fields.items()
    if name not in ("region", "environment")
}
