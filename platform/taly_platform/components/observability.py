"""Observability: the alert rules in Amazon Managed Prometheus, CloudWatch alarms on the managed stores.

The Prometheus rules are the repository's `alerts/taly.rules.yaml` (tested with promtool). The
CloudWatch alarms cover what only CloudWatch sees of RDS, ElastiCache and Amazon MQ, on the seeds'
thresholds, and notify one KMS-encrypted SNS topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from .base import child

RULES_FILE = Path(__file__).resolve().parent.parent / "alerts" / "taly.rules.yaml"


@dataclass
class ObservabilityArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    logs_key_arn: pulumi.Input[str]
    database_ids: list[pulumi.Input[str]]  # primary first, then replicas
    database_storage_gib: int
    database_max_connections: int
    cache_group_id: pulumi.Input[str]
    cache_members: int
    broker_name: pulumi.Input[str]
    tags: dict[str, str]


class Observability(pulumi.ComponentResource):
    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:observability:Observability", name, None, opts)
        n, tags = args.prefix, args.tags
        self.workspace = aws.amp.Workspace(f"{n}-prometheus", alias=f"{n}-prometheus", kms_key_arn=args.logs_key_arn,
                                           tags=tags, opts=child(self))
        aws.amp.RuleGroupNamespace(f"{n}-alerts", name="taly-alerts", workspace_id=self.workspace.id,
                                   data=RULES_FILE.read_text(), opts=child(self))
        self.topic = aws.sns.Topic(f"{n}-alarms", name=f"{n}-alarms", kms_master_key_id="alias/aws/sns", tags=tags, opts=child(self))
        notify = [self.topic.arn]

        def alarm(suffix: str, **kw) -> aws.cloudwatch.MetricAlarm:
            return aws.cloudwatch.MetricAlarm(
                f"{n}-{suffix}", name=f"{n}-{suffix}", alarm_actions=notify, ok_actions=notify,
                treat_missing_data=kw.pop("treat_missing_data", "breaching"), tags=tags, opts=child(self), **kw,
            )

        rds = dict(namespace="AWS/RDS", statistic="Average", period=60)
        primary, *replicas = args.database_ids
        alarm("rds-cpu", metric_name="CPUUtilization", dimensions={"DBInstanceIdentifier": primary},
              comparison_operator="GreaterThanThreshold", threshold=80, evaluation_periods=10, **rds)
        alarm("rds-free-storage", metric_name="FreeStorageSpace", dimensions={"DBInstanceIdentifier": primary},
              comparison_operator="LessThanThreshold", threshold=args.database_storage_gib * 0.1 * 1024**3, evaluation_periods=5, **rds)
        alarm("rds-connections", metric_name="DatabaseConnections", dimensions={"DBInstanceIdentifier": primary},
              comparison_operator="GreaterThanThreshold", threshold=int(args.database_max_connections * 0.9), evaluation_periods=5,
              treat_missing_data="notBreaching", **rds)
        for i, replica in enumerate(replicas, start=1):
            alarm(f"rds-replica-{i}-lag", metric_name="ReplicaLag", dimensions={"DBInstanceIdentifier": replica},
                  comparison_operator="GreaterThanThreshold", threshold=10, evaluation_periods=3, **rds)

        cache = dict(namespace="AWS/ElastiCache", statistic="Maximum", period=60, evaluation_periods=5)
        for member in range(1, args.cache_members + 1):
            node = pulumi.Output.from_input(args.cache_group_id).apply(lambda g, m=member: f"{g}-{m:03d}")
            alarm(f"redis-{member}-memory", metric_name="DatabaseMemoryUsagePercentage", dimensions={"CacheClusterId": node},
                  comparison_operator="GreaterThanThreshold", threshold=90, **cache)
            alarm(f"redis-{member}-cpu", metric_name="EngineCPUUtilization", dimensions={"CacheClusterId": node},
                  comparison_operator="GreaterThanThreshold", threshold=80, **cache)

        alarm("mq-memory", comparison_operator="GreaterThanThreshold", threshold=90, evaluation_periods=5,
              metric_queries=[
                  {"id": "used", "metric": {"namespace": "AWS/AmazonMQ", "metric_name": "RabbitMQMemUsed", "period": 60,
                                            "stat": "Maximum", "dimensions": {"Broker": args.broker_name}}},
                  {"id": "limit", "metric": {"namespace": "AWS/AmazonMQ", "metric_name": "RabbitMQMemLimit", "period": 60,
                                             "stat": "Maximum", "dimensions": {"Broker": args.broker_name}}},
                  {"id": "percent", "expression": "100 * used / limit", "label": "memory used (%)", "return_data": True},
              ])
        alarm("mq-disk", metric_name="RabbitMQDiskFree", namespace="AWS/AmazonMQ", statistic="Minimum", period=60,
              dimensions={"Broker": args.broker_name}, comparison_operator="LessThanThreshold",
              threshold=5 * 1024**3, evaluation_periods=5)

        self.prometheus_endpoint = self.workspace.prometheus_endpoint
        self.alarm_topic_arn = self.topic.arn
        self.register_outputs({"prometheusEndpoint": self.prometheus_endpoint, "alarmTopicArn": self.alarm_topic_arn})
