"""The environment contract: what the Pulumi program exports and the ops CLI reads.

Defined once, used by both sides. Ids, endpoints, names and ARNs only, never a secret value.
The program exports each top-level field as a stack output, so
`pulumi stack output --json > contracts/<env>.json` is a valid contract file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterContract(_Contract):
    name: str
    endpoint: str
    oidc_provider_arn: str
    namespace: str
    kube_context: str


class DatabaseContract(_Contract):
    primary_id: str
    primary_endpoint: str
    port: int
    database: str
    replica_ids: list[str]
    replica_endpoints: list[str]
    multi_az: bool
    master_secret_arn: str
    subnet_group_name: str        # the DB subnet group a restore drill's scratch instance goes into
    drill_security_group_id: str  # the drill-only security group (never the cluster's clients)


class CacheContract(_Contract):
    replication_group_id: str
    primary_endpoint: str
    reader_endpoint: str
    port: int
    automatic_failover: bool
    auth_secret_arn: str


class BrokerContract(_Contract):
    broker_id: str
    broker_name: str
    deployment_mode: str
    credentials_secret_arn: str


class BucketsContract(_Contract):
    media: str
    backups: str
    logs: str


class BackupContract(_Contract):
    vault_name: str
    plan_id: str
    rpo_minutes: int
    rto_minutes: int


class EnvironmentContract(_Contract):
    environment: str
    region: str
    dr_region: str
    account_id: str
    vpc_id: str
    cluster: ClusterContract
    database: DatabaseContract
    cache: CacheContract
    broker: BrokerContract
    buckets: BucketsContract
    backup: BackupContract
    kms_keys: dict[str, str]
    service_roles: dict[str, str]
    web_acl_arn: str
    parameter_prefix: str
    prometheus_endpoint: str
    alarm_topic_arn: str
