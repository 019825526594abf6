"""Network: a VPC over the configured AZs with public, private and database subnets.

NAT gateways per AZ or a single one (stack config), an S3 gateway endpoint so data traffic
to S3 stays off the NAT, VPC flow logs to a KMS-encrypted log group, and the default security
group emptied so nothing can use it by accident.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import NatMode, NetworkConfig
from .base import assume_role_policy, child, policy_json, with_tags


@dataclass
class NetworkArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    region: str
    config: NetworkConfig
    logs_key_arn: pulumi.Input[str]
    tags: dict[str, str]


def subnet_plan(cidr: str, az_count: int) -> dict[str, list[str]]:
    """Carve the VPC: private /20s from the bottom, public and database /24s from the top /20."""
    vpc = ipaddress.ip_network(cidr)
    twenties = list(vpc.subnets(new_prefix=20))
    top = list(twenties[-1].subnets(new_prefix=24))
    return {
        "private": [str(n) for n in twenties[:az_count]],
        "public": [str(n) for n in top[:az_count]],
        "database": [str(n) for n in top[8 : 8 + az_count]],
    }


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    database_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:network:Network", name, None, opts)
        cfg, n = args.config, args.prefix
        azs = cfg.availability_zones
        plan = subnet_plan(cfg.cidr, len(azs))

        self.vpc = aws.ec2.Vpc(
            f"{n}-vpc", cidr_block=cfg.cidr, enable_dns_hostnames=True, enable_dns_support=True,
            tags=with_tags(args.tags, Name=f"{n}-vpc"), opts=child(self),
        )
        aws.ec2.DefaultSecurityGroup(
            f"{n}-default-sg", vpc_id=self.vpc.id, ingress=[], egress=[],
            tags=with_tags(args.tags, Name=f"{n}-default-deny"), opts=child(self),
        )
        igw = aws.ec2.InternetGateway(f"{n}-igw", vpc_id=self.vpc.id, tags=args.tags, opts=child(self))

        def subnets(tier: str, extra: dict[str, str]) -> list[aws.ec2.Subnet]:
            return [
                aws.ec2.Subnet(
                    f"{n}-{tier}-{az}", vpc_id=self.vpc.id, cidr_block=block, availability_zone=az,
                    map_public_ip_on_launch=False,
                    tags=with_tags(args.tags, Name=f"{n}-{tier}-{az}", tier=tier, **extra),
                    opts=child(self),
                )
                for az, block in zip(azs, plan[tier])
            ]

        public = subnets("public", {"kubernetes.io/role/elb": "1"})
        private = subnets("private", {"kubernetes.io/role/internal-elb": "1"})
        database = subnets("database", {})

        public_rt = aws.ec2.RouteTable(
            f"{n}-public-rt", vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags=with_tags(args.tags, Name=f"{n}-public"), opts=child(self),
        )
        for az, sn in zip(azs, public):
            aws.ec2.RouteTableAssociation(f"{n}-public-{az}", subnet_id=sn.id, route_table_id=public_rt.id, opts=child(self))

        nat_count = len(azs) if cfg.nat_gateways == NatMode.one_per_az else 1
        nats = []
        for az, sn in list(zip(azs, public))[:nat_count]:
            eip = aws.ec2.Eip(f"{n}-nat-{az}", domain="vpc", tags=args.tags, opts=child(self))
            nats.append(
                aws.ec2.NatGateway(
                    f"{n}-nat-{az}", allocation_id=eip.id, subnet_id=sn.id,
                    tags=with_tags(args.tags, Name=f"{n}-nat-{az}"), opts=child(self, depends_on=[igw]),
                )
            )

        private_rts = []
        for i, (az, sn) in enumerate(zip(azs, private)):
            rt = aws.ec2.RouteTable(
                f"{n}-private-rt-{az}", vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % nat_count].id}],
                tags=with_tags(args.tags, Name=f"{n}-private-{az}"), opts=child(self),
            )
            aws.ec2.RouteTableAssociation(f"{n}-private-{az}", subnet_id=sn.id, route_table_id=rt.id, opts=child(self))
            private_rts.append(rt)

        # Database subnets have no route out at all.
        db_rt = aws.ec2.RouteTable(f"{n}-database-rt", vpc_id=self.vpc.id, tags=with_tags(args.tags, Name=f"{n}-database"), opts=child(self))
        for az, sn in zip(azs, database):
            aws.ec2.RouteTableAssociation(f"{n}-database-{az}", subnet_id=sn.id, route_table_id=db_rt.id, opts=child(self))

        aws.ec2.VpcEndpoint(
            f"{n}-s3-endpoint", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_rts] + [db_rt.id],
            tags=args.tags, opts=child(self),
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{n}-flow-logs", name=f"/taly/{n}/vpc-flow-logs", retention_in_days=cfg.flow_log_retention_days,
            kms_key_id=args.logs_key_arn, tags=args.tags, opts=child(self),
        )
        role = aws.iam.Role(f"{n}-flow-logs", assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"), tags=args.tags, opts=child(self))
        aws.iam.RolePolicy(
            f"{n}-flow-logs", role=role.id,
            policy=policy_json([{
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [log_group.arn, log_group.arn.apply(lambda a: f"{a}:*")],
            }]),
            opts=child(self),
        )
        aws.ec2.FlowLog(
            f"{n}-flow-log", vpc_id=self.vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn, iam_role_arn=role.arn, tags=args.tags, opts=child(self),
        )

        self.vpc_id = self.vpc.id
        self.vpc_cidr = cfg.cidr
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.database_subnet_ids = pulumi.Output.all(*[s.id for s in database])
        self.register_outputs({
            "vpcId": self.vpc_id,
            "publicSubnetIds": self.public_subnet_ids,
            "privateSubnetIds": self.private_subnet_ids,
            "databaseSubnetIds": self.database_subnet_ids,
        })
