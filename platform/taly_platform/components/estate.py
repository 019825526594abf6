"""The whole estate of one environment: every component, wired together, and its contract."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from ..config import StackConfig
from .backup import Backup, BackupArgs
from .broker import Broker, BrokerArgs
from .cache import REDIS_PORT, Cache, CacheArgs
from .cluster import Cluster, ClusterArgs
from .database import Database, DatabaseArgs
from .edge import Edge, EdgeArgs, cloudtrail_bucket_statements
from .identity import Identity, IdentityArgs
from .kms import Kms, KmsArgs
from .network import Network, NetworkArgs, subnet_plan
from .observability import Observability, ObservabilityArgs
from .secrets import CredentialSpec, Parameters, ParametersArgs, Secrets, SecretsArgs
from .storage import Storage, StorageArgs
from .workloads import Workloads, WorkloadsArgs


class Estate:
    """Builds the components in dependency order; `contract()` is what the stack exports."""

    def __init__(self, config: StackConfig) -> None:
        self.config = c = config
        n, tags, env = c.name_prefix, c.tags, c.environment
        protect = c.protection.protect_stateful
        self.account_id = aws.get_caller_identity_output().account_id
        dr_needed = c.database.cross_region_backup_replication or c.storage.backups_cross_region_replication or c.backup.cross_region_copy
        dr_region = c.dr_region if dr_needed else None

        self.kms = Kms("kms", KmsArgs(prefix=n, region=c.region, account_id=self.account_id, tags=tags,
                               dr_region=dr_region, protect=protect))
        keys = self.kms.arns
        dr_key = self.kms.dr_backup_key.arn if self.kms.dr_backup_key else None

        self.network = Network("network", NetworkArgs(prefix=n, region=c.region, config=c.network, logs_key_arn=keys["logs"], tags=tags))
        self.storage = Storage("storage", StorageArgs(
            prefix=n, account_id=self.account_id, config=c.storage, data_key_arn=keys["data"], backup_key_arn=keys["backup"],
            logs_key_arn=keys["logs"], tags=tags, protect=protect, dr_region=dr_region, dr_backup_key_arn=dr_key,
            logs_policy_statements=cloudtrail_bucket_statements(self.account_id),
        ))
        self.secrets = Secrets("secrets", SecretsArgs(
            prefix=n, environment=env, kms_key_arn=keys["data"], tags=tags,
            credentials=[CredentialSpec("database", "taly_admin"), CredentialSpec("cache", None),
                         CredentialSpec("broker", "taly_admin")],
        ))
        creds = self.secrets.credentials
        self.cluster = Cluster("cluster", ClusterArgs(
            prefix=n, config=c.cluster, subnet_ids=self.network.private_subnet_ids, secrets_key_arn=keys["eks"],
            logs_key_arn=keys["logs"], volume_key_arn=keys["data"], tags=tags, protect=protect,
        ))
        stores = dict(vpc_id=self.network.vpc_id, subnet_ids=self.network.database_subnet_ids,
                      client_security_group_id=self.cluster.security_group_id, tags=tags, protect=protect)
        self.database = Database("database", DatabaseArgs(
            prefix=n, config=c.database, kms_key_arn=keys["data"], master_password=creds["database"].password,
            dr_region=dr_region, dr_kms_key_arn=dr_key, **stores,
        ))
        self.cache = Cache("cache", CacheArgs(
            prefix=n, config=c.cache, kms_key_arn=keys["data"], logs_key_arn=keys["logs"],
            auth_token=creds["cache"].password, **stores,
        ))
        self.broker = Broker("broker", BrokerArgs(
            prefix=n, config=c.broker, password=creds["broker"].password,
            **{**stores, "subnet_ids": self.network.private_subnet_ids},
        ))
        self.parameters = Parameters("parameters", ParametersArgs(
            prefix=n, environment=env, log_level=c.services.log_level, tags=tags,
            settings={
                "DATABASE_HOST": self.database.endpoint,
                "DATABASE_READER_HOSTS": self.database.replica_endpoints.apply(lambda hs: ",".join(hs) if hs else ""),
                "DATABASE_PORT": "5432",
                "DATABASE_NAME": c.database.database_name,
                "REDIS_HOST": self.cache.primary_endpoint,
                "REDIS_PORT": str(REDIS_PORT),
                "AMQP_ENDPOINT": self.broker.endpoint,
                "MEDIA_BUCKET": self.storage.media.name,
            },
        ))
        self.identity = Identity("service-roles", IdentityArgs(
            prefix=n, environment=env, region=c.region, account_id=self.account_id, namespace=c.services.namespace,
            oidc_provider_arn=self.cluster.oidc_provider_arn, oidc_issuer=self.cluster.oidc_issuer,
            media_bucket_arn=self.storage.media.arn, data_key_arn=keys["data"],
            secret_arns={k: v.arn for k, v in creds.items()}, tags=tags,
        ))
        self.backup = Backup("backup", BackupArgs(
            prefix=n, config=c.backup, kms_key_arn=keys["backup"], tags=tags, protect=protect,
            dr_region=dr_region, dr_kms_key_arn=dr_key,
        ))
        self.edge = Edge("edge", EdgeArgs(
            prefix=n, config=c.edge, logs_bucket=self.storage.logs.name, logs_key_arn=keys["logs"], tags=tags,
            trail_depends_on=[self.storage],
        ))

        self.observability = Observability("observability", ObservabilityArgs(
            prefix=n, logs_key_arn=keys["logs"], tags=tags,
            database_ids=[self.database.primary.identifier, *[r.identifier for r in self.database.replicas]],
            database_storage_gib=c.database.allocated_storage_gib, database_max_connections=c.database.max_connections,
            cache_group_id=self.cache.group.replication_group_id, cache_members=1 + c.cache.replicas,
            broker_name=self.broker.broker.broker_name,
        ))

        subnets = subnet_plan(c.network.cidr, len(c.network.availability_zones))
        self.workloads = Workloads("workloads", WorkloadsArgs(
            prefix=n, environment=env, region=c.region, services=c.services, kube_version=f"{c.cluster.version}.0",
            cluster_name=self.cluster.name, cluster_endpoint=self.cluster.endpoint, cluster_ca=self.cluster.ca_data,
            role_arns=self.identity.arns, web_acl_arn=self.edge.web_acl_arn,
            data_cidrs=subnets["database"] + subnets["private"], tags=tags,
        ))

    def contract(self) -> dict[str, Any]:
        """Stack outputs: exactly the fields of `taly_platform.contract.EnvironmentContract`."""
        c = self.config
        db, cache = self.database, self.cache
        return {
            "environment": c.environment,
            "region": c.region,
            "dr_region": c.dr_region,
            "account_id": self.account_id,
            "vpc_id": self.network.vpc_id,
            "cluster": {
                "name": self.cluster.name, "endpoint": self.cluster.endpoint,
                "oidc_provider_arn": self.cluster.oidc_provider_arn, "namespace": self.workloads.namespace,
                "kube_context": self.cluster.name,
            },
            "database": {
                "primary_id": db.primary.identifier, "primary_endpoint": db.endpoint, "port": db.port,
                "database": c.database.database_name, "replica_ids": [r.identifier for r in db.replicas],
                "replica_endpoints": db.replica_endpoints, "multi_az": c.database.multi_az,
                "master_secret_arn": self.secrets.credentials["database"].arn,
                "subnet_group_name": db.subnet_group.name, "drill_security_group_id": db.drill_security_group.id,
            },
            "cache": {
                "replication_group_id": cache.group.replication_group_id, "primary_endpoint": cache.primary_endpoint,
                "reader_endpoint": cache.reader_endpoint, "port": REDIS_PORT, "automatic_failover": c.cache.multi_az,
                "auth_secret_arn": self.secrets.credentials["cache"].arn,
            },
            "broker": {
                "broker_id": self.broker.broker.id, "broker_name": self.broker.broker.broker_name,
                "deployment_mode": c.broker.deployment_mode,
                "credentials_secret_arn": self.secrets.credentials["broker"].arn,
            },
            "buckets": {"media": self.storage.media.name, "backups": self.storage.backups.name, "logs": self.storage.logs.name},
            "backup": {"vault_name": self.backup.vault.name, "plan_id": self.backup.plan.id,
                       "rpo_minutes": c.backup.rpo_minutes, "rto_minutes": c.backup.rto_minutes},
            "kms_keys": self.kms.arns,
            "service_roles": self.identity.arns,
            "web_acl_arn": self.edge.web_acl_arn,
            "parameter_prefix": self.parameters.prefix,
            "prometheus_endpoint": self.observability.prometheus_endpoint,
            "alarm_topic_arn": self.observability.alarm_topic_arn,
        }
