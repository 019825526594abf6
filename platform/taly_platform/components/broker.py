"""Amazon MQ for RabbitMQ: private, credentials from Secrets Manager, general logs on.

`SINGLE_INSTANCE` or `CLUSTER_MULTI_AZ` from stack config. Amazon MQ for RabbitMQ encrypts at
rest with an AWS-owned key only (a customer-managed key is not offered for this engine).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import BrokerConfig
from .base import child, cluster_only_security_group

AMQPS_PORT = 5671
ADMIN_USERNAME = "taly_admin"


@dataclass
class BrokerArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    config: BrokerConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    client_security_group_id: pulumi.Input[str]
    password: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool = False


class Broker(pulumi.ComponentResource):
    def __init__(self, name: str, args: BrokerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:broker:Broker", name, None, opts)
        cfg, n, tags = args.config, args.prefix, args.tags
        self.security_group = cluster_only_security_group(
            self, f"{n}-rabbitmq", vpc_id=args.vpc_id, client_security_group_id=args.client_security_group_id,
            ports={AMQPS_PORT: "AMQPS", 443: "management API"},
            description="AMQPS and the management console from the EKS cluster only", tags=tags,
        )
        single = cfg.deployment_mode == "SINGLE_INSTANCE"
        subnet_ids = pulumi.Output.from_input(args.subnet_ids).apply(lambda ids: ids[:1] if single else ids)
        self.broker = aws.mq.Broker(
            f"{n}-rabbitmq", broker_name=f"{n}-rabbitmq", engine_type="RabbitMQ", engine_version=cfg.engine_version,
            host_instance_type=cfg.instance_type, deployment_mode=cfg.deployment_mode, publicly_accessible=False,
            subnet_ids=subnet_ids, security_groups=[self.security_group.id],
            users=[{"username": ADMIN_USERNAME, "password": args.password}],
            logs={"general": True}, auto_minor_version_upgrade=True,
            maintenance_window_start_time={"day_of_week": "SUNDAY", "time_of_day": "04:00", "time_zone": "UTC"},
            tags=tags, opts=child(self, protect=args.protect),
        )
        self.endpoint = self.broker.instances.apply(lambda xs: (xs[0]["endpoints"][0] if isinstance(xs[0], dict) else xs[0].endpoints[0]) if xs else "")
        self.register_outputs({"brokerId": self.broker.id, "endpoint": self.endpoint})
