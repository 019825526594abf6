"""IAM: one IRSA role per CMS service, least privilege.

Each role trusts only its own Kubernetes service account through the cluster's OIDC provider,
reads only its own settings and the credentials of the stores it uses, and touches the media
bucket only as the catalog allows (content writes; search, catalog and worker read).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..catalog import CATALOG, Service
from .base import child, policy_json
from .secrets import parameter_prefix


@dataclass
class IdentityArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    environment: str
    region: str
    account_id: pulumi.Input[str]
    namespace: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    media_bucket_arn: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]
    secret_arns: dict[str, pulumi.Input[str]]  # "database" | "cache" | "broker" -> ARN
    tags: dict[str, str]


def _trust(provider_arn: str, issuer: str, namespace: str, service: str) -> dict:
    host = issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{host}:sub": f"system:serviceaccount:{namespace}:{service}",
                f"{host}:aud": "sts.amazonaws.com",
            }},
        }],
    }


def service_statements(svc: Service, args: IdentityArgs) -> list[dict]:
    params = pulumi.Output.from_input(args.account_id).apply(
        lambda acct: f"arn:aws:ssm:{args.region}:{acct}:parameter{parameter_prefix(args.environment, svc.name)}*"
    )
    statements: list[dict] = [
        {"Sid": "OwnSettings", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
         "Resource": [params]},
        {"Sid": "DecryptOwnSecrets", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [args.data_key_arn]},
    ]
    secrets = [args.secret_arns[need] for need in ("database", "cache", "broker") if getattr(svc, need)]
    if secrets:
        statements.append({"Sid": "StoreCredentials", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secrets})
    bucket = pulumi.Output.from_input(args.media_bucket_arn)
    if svc.media in ("read", "write"):
        statements.append({"Sid": "MediaRead", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                           "Resource": [bucket, bucket.apply(lambda a: f"{a}/*")]})
    if svc.media == "write":
        statements += [
            {"Sid": "MediaWrite", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
             "Resource": [bucket.apply(lambda a: f"{a}/*")]},
            {"Sid": "MediaEncrypt", "Effect": "Allow", "Action": ["kms:GenerateDataKey"], "Resource": [args.data_key_arn]},
        ]
    return statements


class Identity(pulumi.ComponentResource):
    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:identity:ServiceRoles", name, None, opts)
        self.roles: dict[str, aws.iam.Role] = {}
        trust_inputs = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer)
        for svc in CATALOG:
            role = aws.iam.Role(
                f"{args.prefix}-{svc.name}", name=f"{args.prefix}-{svc.name}",
                description=f"IRSA role of the {svc.name} service",
                assume_role_policy=trust_inputs.apply(
                    lambda t, s=svc.name: pulumi.Output.json_dumps(_trust(t[0], t[1], args.namespace, s))
                ),
                max_session_duration=3600, tags={**args.tags, "service": svc.name}, opts=child(self),
            )
            aws.iam.RolePolicy(f"{args.prefix}-{svc.name}", role=role.id, policy=policy_json(service_statements(svc, args)), opts=child(self))
            self.roles[svc.name] = role
        self.arns = {name: role.arn for name, role in self.roles.items()}
        self.register_outputs({"roleArns": self.arns})
