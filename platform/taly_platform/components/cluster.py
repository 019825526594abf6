"""EKS: a private control plane with audit logs and KMS-encrypted secrets, IRSA, managed nodes.

The API endpoint is private; a public endpoint exists only with an explicit allow-list (stack
config). Nodes come from launch templates that require IMDSv2 with a hop limit of 1, so pods
cannot borrow the node's role (they get their own through IRSA), and encrypt their disks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import ClusterConfig
from .base import assume_role_policy, child

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator"]
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


@dataclass
class ClusterArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    config: ClusterConfig
    subnet_ids: pulumi.Input[list[str]]
    secrets_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    volume_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool = False


class Cluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:cluster:Cluster", name, None, opts)
        cfg, n, tags = args.config, args.prefix, args.tags

        role = aws.iam.Role(f"{n}-eks-cluster", assume_role_policy=assume_role_policy("eks.amazonaws.com"), tags=tags, opts=child(self))
        attach = aws.iam.RolePolicyAttachment(
            f"{n}-eks-cluster-policy", role=role.name, policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", opts=child(self),
        )
        # EKS writes to this group by name; creating it first sets its retention and key.
        log_group = aws.cloudwatch.LogGroup(
            f"{n}-eks-logs", name=f"/aws/eks/{n}/cluster", retention_in_days=cfg.log_retention_days,
            kms_key_id=args.logs_key_arn, tags=tags, opts=child(self),
        )
        self.cluster = aws.eks.Cluster(
            f"{n}-eks", name=n, version=cfg.version, role_arn=role.arn,
            vpc_config={
                "subnet_ids": args.subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": cfg.endpoint_public_access,
                "public_access_cidrs": cfg.public_access_cidrs if cfg.endpoint_public_access else None,
            },
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            encryption_config={"provider": {"key_arn": args.secrets_key_arn}, "resources": ["secrets"]},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            deletion_protection=args.protect,
            tags=tags,
            opts=child(self, protect=args.protect, depends_on=[attach, log_group]),
        )
        self.oidc_issuer = self.cluster.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"] if isinstance(ids[0], dict) else ids[0].oidcs[0].issuer)
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{n}-oidc", url=self.oidc_issuer, client_id_lists=["sts.amazonaws.com"], tags=tags, opts=child(self),
        )

        node_role = aws.iam.Role(f"{n}-eks-nodes", assume_role_policy=assume_role_policy("ec2.amazonaws.com"), tags=tags, opts=child(self))
        node_attachments = [
            aws.iam.RolePolicyAttachment(f"{n}-eks-nodes-{p}", role=node_role.name, policy_arn=f"arn:aws:iam::aws:policy/{p}", opts=child(self))
            for p in NODE_POLICIES
        ]
        self.node_groups = []
        for group in cfg.node_groups:
            template = aws.ec2.LaunchTemplate(
                f"{n}-{group.name}",
                metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
                block_device_mappings=[{
                    "device_name": "/dev/xvda",
                    "ebs": {"volume_size": group.disk_size_gib, "volume_type": "gp3", "encrypted": "true",
                            "kms_key_id": args.volume_key_arn, "delete_on_termination": "true"},
                }],
                tag_specifications=[{"resource_type": "instance", "tags": {**tags, "node-group": group.name}}],
                tags=tags, opts=child(self),
            )
            self.node_groups.append(aws.eks.NodeGroup(
                f"{n}-{group.name}", cluster_name=self.cluster.name, node_group_name=group.name, node_role_arn=node_role.arn,
                subnet_ids=args.subnet_ids, instance_types=group.instance_types, capacity_type=group.capacity_type,
                scaling_config={"min_size": group.min_size, "desired_size": group.desired_size, "max_size": group.max_size},
                update_config={"max_unavailable": 1},
                launch_template={"id": template.id, "version": template.latest_version.apply(str)},
                tags=tags,
                opts=child(self, depends_on=node_attachments,
                           ignore_changes=["scalingConfig.desiredSize"]),  # the cluster autoscaler owns it
            ))

        self.name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.ca_data = self.cluster.certificate_authority.apply(lambda ca: ca["data"] if isinstance(ca, dict) else ca.data)
        self.version = cfg.version
        self.security_group_id = self.cluster.vpc_config.cluster_security_group_id
        self.oidc_provider_arn = self.oidc_provider.arn
        self.register_outputs({"name": self.name, "endpoint": self.endpoint, "oidcProviderArn": self.oidc_provider_arn})
