"""ElastiCache Redis: a replication group encrypted at rest (KMS) and in transit, with AUTH.

Replicas, Multi-AZ with automatic failover and snapshot retention come from stack config.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import CacheConfig
from .base import child, cluster_only_security_group

REDIS_PORT = 6379


@dataclass
class CacheArgs:
    name: str
    config: CacheConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    client_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    auth_token: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool = False


class Cache(pulumi.ComponentResource):
    def __init__(self, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:cache:Cache", "cache", None, opts)
        cfg, n, tags = args.config, args.name, args.tags
        subnets = aws.elasticache.SubnetGroup(f"{n}-redis", subnet_ids=args.subnet_ids, tags=tags, opts=child(self))
        self.security_group = cluster_only_security_group(
            self, f"{n}-redis", vpc_id=args.vpc_id, client_security_group_id=args.client_security_group_id,
            ports={REDIS_PORT: "Redis from the EKS cluster"}, description="Redis from the EKS cluster only", tags=tags,
        )
        slow_log = aws.cloudwatch.LogGroup(
            f"{n}-redis-slow-log", name=f"/taly/{n}/redis/slow-log", retention_in_days=30, kms_key_id=args.logs_key_arn,
            tags=tags, opts=child(self),
        )
        self.group = aws.elasticache.ReplicationGroup(
            f"{n}-redis", replication_group_id=f"{n}-redis", description=f"taly {n} cache",
            engine="redis", engine_version=cfg.engine_version, node_type=cfg.node_type, port=REDIS_PORT,
            num_cache_clusters=1 + cfg.replicas,
            automatic_failover_enabled=cfg.multi_az, multi_az_enabled=cfg.multi_az,
            at_rest_encryption_enabled=True, kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True, auth_token=args.auth_token,
            snapshot_retention_limit=cfg.snapshot_retention_days, snapshot_window=cfg.snapshot_window,
            subnet_group_name=subnets.name, security_group_ids=[self.security_group.id],
            auto_minor_version_upgrade=True, apply_immediately=False,
            final_snapshot_identifier=f"{n}-redis-final" if args.protect else None,
            log_delivery_configurations=[{
                "destination": slow_log.name, "destination_type": "cloudwatch-logs",
                "log_format": "json", "log_type": "slow-log",
            }],
            tags=tags,
            opts=child(self, protect=args.protect),
        )
        self.primary_endpoint = self.group.primary_endpoint_address
        self.reader_endpoint = self.group.reader_endpoint_address
        self.register_outputs({"primaryEndpoint": self.primary_endpoint, "readerEndpoint": self.reader_endpoint})
