"""Small shared pieces for the components: tags, child options, policy documents."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def child(parent: pulumi.Resource, *, protect: bool = False, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options for a resource owned by a component (children are parented, never floating)."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, **kwargs)


def with_tags(tags: dict[str, str], **extra: str) -> dict[str, str]:
    return {**tags, **extra}


def policy_json(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document from statements that may hold Outputs."""
    return pulumi.Output.from_input({"Version": "2012-10-17", "Statement": statements}).apply(
        lambda doc: json.dumps(doc, sort_keys=True)
    )


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        },
        sort_keys=True,
    )


def cluster_only_security_group(
    parent: pulumi.Resource, name: str, *, vpc_id: pulumi.Input[str], client_security_group_id: pulumi.Input[str],
    ports: dict[int, str], description: str, tags: dict[str, str],
) -> aws.ec2.SecurityGroup:
    """A data store's security group: TCP `ports` from the EKS cluster's group only, no egress."""
    return aws.ec2.SecurityGroup(
        name, vpc_id=vpc_id, description=description,
        ingress=[{"protocol": "tcp", "from_port": port, "to_port": port, "security_groups": [client_security_group_id],
                  "description": what} for port, what in ports.items()],
        egress=[], tags={**tags, "Name": name}, opts=child(parent),
    )
