"""Typed stack configuration: everything an environment may vary, validated before any resource.

The stack files (`stacks/Pulumi.<env>.yaml`) hold environment differences; the components never
branch on the environment's name. This module is pure pydantic (no Pulumi import) so the ops CLI
can load and compare stack files cheaply.
"""

from __future__ import annotations

import ipaddress
import re
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

ENVIRONMENTS = ("dev", "staging", "prod")
PROJECT = "taly"


class _Model(BaseModel):
    """Stack-file keys are camelCase (Pulumi's convention); Python sees snake_case."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


Days = Annotated[int, Field(ge=1, le=3650)]
# Kubernetes quantities, in the forms the chart's values.schema.json accepts (memory in Mi or Gi only).
CpuQuantity = Annotated[str, Field(pattern=r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")]
MemoryQuantity = Annotated[str, Field(pattern=r"^[1-9][0-9]*(Mi|Gi)$")]


def millicores(quantity: str) -> int:
    """"250m" -> 250, "1.5" -> 1500."""
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def mebibytes(quantity: str) -> int:
    """"512Mi" -> 512, "2Gi" -> 2048."""
    return int(quantity[:-2]) * (1024 if quantity.endswith("Gi") else 1)
Port = Annotated[int, Field(ge=1, le=65535)]


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a CIDR block ({exc})") from None
    if net.version != 4:
        raise ValueError("must be an IPv4 CIDR block")
    return str(net)


class NatMode(str, Enum):
    single = "single"
    one_per_az = "onePerAz"


class NetworkConfig(_Model):
    """VPC layout. Subnets are carved from `cidr`: public /24s, private /20s, database /24s."""

    cidr: str = "10.0.0.0/16"
    availability_zones: list[str] = Field(min_length=2, max_length=3)
    nat_gateways: NatMode = NatMode.one_per_az
    flow_log_retention_days: Days = 90

    @field_validator("cidr")
    @classmethod
    def _size(cls, v: str) -> str:
        v = _cidr(v)
        if ipaddress.ip_network(v).prefixlen > 16:
            raise ValueError("must be a /16 or larger to hold public, private and database subnets")
        return v

    @field_validator("availability_zones")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("availability zones must be distinct")
        return v


class NodeGroupConfig(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    instance_types: list[str] = Field(min_length=1)
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    min_size: Annotated[int, Field(ge=0, le=100)]
    desired_size: Annotated[int, Field(ge=0, le=100)]
    max_size: Annotated[int, Field(ge=1, le=100)]
    disk_size_gib: Annotated[int, Field(ge=20, le=1000)] = 50

    @model_validator(mode="after")
    def _ordered(self) -> "NodeGroupConfig":
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("node group sizes must satisfy minSize <= desiredSize <= maxSize")
        return self


class ClusterConfig(_Model):
    version: Annotated[str, Field(pattern=r"^1\.(2[89]|3[0-9])$")] = "1.33"
    endpoint_public_access: bool = False
    public_access_cidrs: list[str] = []
    log_retention_days: Days = 90
    node_groups: list[NodeGroupConfig] = Field(min_length=1)

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        out = [_cidr(c) for c in v]
        if "0.0.0.0/0" in out:
            raise ValueError("0.0.0.0/0 is not an allow-list; name the networks that may reach the API")
        return out

    @model_validator(mode="after")
    def _allow_list(self) -> "ClusterConfig":
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError("endpointPublicAccess needs publicAccessCidrs (an allow-list)")
        return self


class DatabaseConfig(_Model):
    engine_version: Annotated[str, Field(pattern=r"^1[5-7](\.\d+)?$")] = "15.10"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")]
    allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 50
    max_allocated_storage_gib: Annotated[int, Field(ge=20, le=65536)] = 200
    multi_az: bool = True
    read_replicas: Annotated[int, Field(ge=0, le=5)] = 0
    backup_retention_days: Annotated[int, Field(ge=7, le=35)] = 7
    backup_window: str = "02:00-03:00"
    maintenance_window: str = "sun:03:30-sun:04:30"
    deletion_protection: bool = True
    final_snapshot: bool = True
    performance_insights_retention_days: Literal[7, 31, 93, 186, 372, 731] = 7
    cross_region_backup_replication: bool = False
    database_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = "taly"
    max_connections: Annotated[int, Field(ge=20, le=10000)] = 400
    # Who may reach a restore drill's scratch instance on 5432 (the ops runners' private subnets).
    # Empty (the default): the drill security group admits nobody, and a cloud drill cannot verify.
    drill_client_cidrs: list[str] = []

    @field_validator("drill_client_cidrs")
    @classmethod
    def _drill_cidrs(cls, v: list[str]) -> list[str]:
        out = [_cidr(c) for c in v]
        public = [c for c in out if not ipaddress.ip_network(c).is_private]
        if public:
            raise ValueError(f"{', '.join(public)}: drill clients must be private networks "
                             "(the drill instance is never publicly accessible)")
        if len(set(out)) != len(out):
            raise ValueError("drill client CIDRs must be distinct")
        return out

    @model_validator(mode="after")
    def _storage(self) -> "DatabaseConfig":
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("maxAllocatedStorageGib must be >= allocatedStorageGib")
        return self


class CacheConfig(_Model):
    engine_version: str = "7.1"
    node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")]
    replicas: Annotated[int, Field(ge=0, le=5)] = 1
    multi_az: bool = True
    snapshot_retention_days: Annotated[int, Field(ge=0, le=35)] = 7
    snapshot_window: str = "01:00-02:00"
    # The seeds' "RDB snapshots every hour": a scheduled function takes one an hour and deletes those
    # older than the retention (ElastiCache's own snapshot is daily, and manual snapshots never expire).
    hourly_snapshots: bool = True
    hourly_snapshot_retention_hours: Annotated[int, Field(ge=2, le=720)] = 48

    @model_validator(mode="after")
    def _failover(self) -> "CacheConfig":
        if self.multi_az and self.replicas < 1:
            raise ValueError("multiAz (automatic failover) needs at least one replica")
        return self


class BrokerConfig(_Model):
    engine_version: str = "3.13"
    deployment_mode: Literal["SINGLE_INSTANCE", "CLUSTER_MULTI_AZ"]
    instance_type: Annotated[str, Field(pattern=r"^mq\.[a-z0-9]+\.[a-z0-9]+$")]


class StorageConfig(_Model):
    media_infrequent_access_days: Annotated[int, Field(ge=30)] = 30
    media_glacier_days: Annotated[int, Field(ge=31)] = 90
    noncurrent_version_expiry_days: Days = 90
    log_expiry_days: Days = 365
    backups_cross_region_replication: bool = False

    @model_validator(mode="after")
    def _order(self) -> "StorageConfig":
        if self.media_glacier_days <= self.media_infrequent_access_days:
            raise ValueError("mediaGlacierDays must come after mediaInfrequentAccessDays")
        return self


class BackupConfig(_Model):
    schedule: str = "cron(0 3 * * ? *)"
    retention_days: Days = 35
    cross_region_copy: bool = False
    copy_retention_days: Days = 35
    rpo_minutes: Annotated[int, Field(ge=1, le=1440)] = 60
    rto_minutes: Annotated[int, Field(ge=1, le=1440)] = 15

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not re.fullmatch(r"cron\((\S+ ){5}\S+\)", v):
            raise ValueError("must be an AWS cron expression, e.g. cron(0 3 * * ? *)")
        return v


class EdgeConfig(_Model):
    rate_limit_per_minute: Annotated[int, Field(ge=10, le=100000)] = 100
    trail_retention_days: Days = 365
    managed_rule_groups: list[str] = [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ]


class ServiceSizing(_Model):
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 3
    cpu_target_percent: Annotated[int, Field(ge=10, le=100)] = 70
    memory_target_percent: Annotated[int, Field(ge=10, le=100)] = 80
    cpu_request: CpuQuantity = "100m"
    cpu_limit: CpuQuantity = "500m"
    memory_request: MemoryQuantity = "128Mi"
    memory_limit: MemoryQuantity = "512Mi"

    @model_validator(mode="after")
    def _range(self) -> "ServiceSizing":
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

    platform: list[str] = []
    oncall: list[str] = []
    ci: list[str] = []


class ServicesConfig(_Model):
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = "taly"
    # Where CI pushes images (<registry>/<service>:<tag>). The tag is set on first deploy only:
    # afterwards releases belong to `taly promote`, and `pulumi up` ignores image changes.
    image_registry: Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*$")] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/taly"
    initial_image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = "0.1.0"
    ingress_host: str = "api.taly.example"
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws:acm:")] = "arn:aws:acm:eu-west-1:123456789012:certificate/replace-me"
    access: AccessConfig = AccessConfig()
    sizing: ServiceSizing = ServiceSizing()
    overrides: dict[str, ServiceSizing] = {}
    log_level: Literal["debug", "info", "warn", "error"] = "info"

    @field_validator("overrides")
    @classmethod
    def _known(cls, v: dict[str, ServiceSizing]) -> dict[str, ServiceSizing]:
        from .catalog import SERVICE_NAMES

        unknown = sorted(set(v) - set(SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {list(SERVICE_NAMES)}")
        return v

    @field_validator("initial_image_tag")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if v.lower() == "latest":
            raise ValueError("image tags are pinned versions, never 'latest'")
        return v

    def sizing_for(self, service: str) -> ServiceSizing:
        return self.overrides.get(service, self.sizing)


class PolicyExemption(_Model):
    """A policy rule waived in this environment, always with a reason (shown in every report)."""

    rule: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    resources: list[str] = []  # logical names; empty = the whole environment
    reason: Annotated[str, Field(min_length=10)]


class PolicyConfig(_Model):
    exemptions: list[PolicyExemption] = []


class ProtectionConfig(_Model):
    """`protect=True` on stateful resources (Pulumi refuses to delete them)."""

    protect_stateful: bool = True


class StackConfig(_Model):
    """One environment's settings, as read from `stacks/Pulumi.<env>.yaml`."""

    environment: Literal["dev", "staging", "prod"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    dr_region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    owner: str = "platform"
    network: NetworkConfig
    cluster: ClusterConfig
    database: DatabaseConfig
    cache: CacheConfig
    broker: BrokerConfig
    storage: StorageConfig = StorageConfig()
    backup: BackupConfig = BackupConfig()
    edge: EdgeConfig = EdgeConfig()
    services: ServicesConfig = ServicesConfig()
    protection: ProtectionConfig = ProtectionConfig()
    policy: PolicyConfig = PolicyConfig()

    @model_validator(mode="after")
    def _coherent(self) -> "StackConfig":
        if self.dr_region == self.region:
            raise ValueError("drRegion must differ from the stack's aws:region")
        for az in self.network.availability_zones:
            if not az.startswith(self.region):
                raise ValueError(f"availability zone {az!r} is not in region {self.region!r}")
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
