"""ElastiCache Redis: a replication group encrypted at rest (KMS) and in transit, with AUTH.

Replicas, Multi-AZ with automatic failover and snapshot retention come from stack config. ElastiCache
snapshots automatically once a day; the seeds ask for every hour, so (unless `hourlySnapshots: false`)
a Lambda function run hourly by EventBridge Scheduler takes one and deletes the expired ones
(`functions/redis_snapshots.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import json
from pathlib import Path

import pulumi
import pulumi_aws as aws

from ..config import CacheConfig
from .base import child, cluster_only_security_group

REDIS_PORT = 6379


@dataclass
class CacheArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
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
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:cache:Cache", name, None, opts)
        cfg, n, tags = args.config, args.prefix, args.tags
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
        if cfg.hourly_snapshots:
            self._hourly_snapshots(args)
        self.primary_endpoint = self.group.primary_endpoint_address
        self.reader_endpoint = self.group.reader_endpoint_address
        self.register_outputs({"primaryEndpoint": self.primary_endpoint, "readerEndpoint": self.reader_endpoint})

    def _hourly_snapshots(self, args: CacheArgs) -> None:
        """The function, its role (snapshots of this group only), its log group, and the hourly schedule."""
        cfg, n, tags = args.config, args.prefix, args.tags
        group_id = self.group.replication_group_id
        snapshot_arns = pulumi.Output.all(self.group.arn, group_id).apply(
            lambda a: ":".join(a[0].split(":")[:5]) + f":snapshot:{a[1]}-hourly-*")

        def assume(service: str) -> str:
            return json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})

        role = aws.iam.Role(f"{n}-redis-snapshots", assume_role_policy=assume("lambda.amazonaws.com"),
                            description="Hourly Redis snapshots: create and expire this group's", tags=tags,
                            opts=child(self))
        logs = aws.cloudwatch.LogGroup(
            f"{n}-redis-snapshots", name=f"/aws/lambda/{n}-redis-snapshots", retention_in_days=30,
            kms_key_id=args.logs_key_arn, tags=tags, opts=child(self))
        aws.iam.RolePolicy(
            f"{n}-redis-snapshots", role=role.id,
            policy=pulumi.Output.all(self.group.arn, snapshot_arns, logs.arn, args.kms_key_arn).apply(lambda a: json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["elasticache:CreateSnapshot", "elasticache:AddTagsToResource"],
                     "Resource": [a[0], a[1]]},
                    {"Effect": "Allow", "Action": "elasticache:DeleteSnapshot", "Resource": a[1]},
                    # DescribeSnapshots takes no resource-level permissions.
                    {"Effect": "Allow", "Action": "elasticache:DescribeSnapshots", "Resource": "*"},
                    {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": a[3]},
                    # Grants only for ElastiCache acting on the snapshot, never to a principal of the caller's choosing.
                    {"Effect": "Allow", "Action": "kms:CreateGrant", "Resource": a[3],
                     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
                    {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                     "Resource": f"{a[2]}:*"},
                ]})),
            opts=child(self))
        source = Path(__file__).resolve().parents[1] / "functions" / "redis_snapshots.py"
        function = aws.lambda_.Function(
            f"{n}-redis-snapshots", name=f"{n}-redis-snapshots", role=role.arn, runtime="python3.12",
            handler="redis_snapshots.handler", timeout=120, memory_size=128,
            code=pulumi.AssetArchive({"redis_snapshots.py": pulumi.FileAsset(str(source))}),
            environment={"variables": {"REPLICATION_GROUP_ID": group_id,
                                       "RETENTION_HOURS": str(cfg.hourly_snapshot_retention_hours)}},
            logging_config={"log_format": "JSON", "log_group": logs.name},
            tags=tags, opts=child(self, depends_on=[logs]))
        invoker = aws.iam.Role(f"{n}-redis-snapshots-schedule", assume_role_policy=assume("scheduler.amazonaws.com"),
                               description="EventBridge Scheduler: run the hourly Redis snapshot function", tags=tags,
                               opts=child(self))
        aws.iam.RolePolicy(
            f"{n}-redis-snapshots-schedule", role=invoker.id,
            policy=function.arn.apply(lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}]})),
            opts=child(self))
        aws.scheduler.Schedule(
            f"{n}-redis-hourly-snapshot", name=f"{n}-redis-hourly-snapshot", schedule_expression="rate(1 hour)",
            description="Hourly Redis snapshot (seeds: RDB every hour)", flexible_time_window={"mode": "OFF"},
            target={"arn": function.arn, "role_arn": invoker.arn,
                    "retry_policy": {"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 1800}},
            opts=child(self))
