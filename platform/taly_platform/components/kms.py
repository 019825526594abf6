"""KMS: customer-managed keys, rotated yearly, one per purpose so access can be granted narrowly.

`data` encrypts data stores and secrets, `eks` the cluster's Kubernetes secrets, `backup` the
backup vault and backups bucket, `logs` CloudWatch log groups and CloudTrail. With `dr_region`
set, a second backup key is made there for cross-region copies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .base import child

PURPOSES = ("data", "eks", "backup", "logs")


@dataclass
class KmsArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    region: str
    account_id: pulumi.Input[str]
    tags: dict[str, str]
    dr_region: str | None = None
    protect: bool = False
    deletion_window_days: int = 30


def _key_policy(account_id: str, region: str, purpose: str) -> str:
    statements = [{
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }]
    if purpose == "logs":
        statements += [
            {
                "Sid": "CloudWatchLogsEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:*"}},
            },
            {
                "Sid": "CloudTrailEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{account_id}:trail/*"}},
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class Kms(pulumi.ComponentResource):
    def __init__(self, name: str, args: KmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:security:Kms", name, None, opts)
        self.keys: dict[str, aws.kms.Key] = {}
        for purpose in PURPOSES:
            self.keys[purpose] = self._key(args, purpose, f"{args.prefix}-{purpose}")
        self.dr_backup_key = (
            self._key(args, "backup", f"{args.prefix}-backup-dr", region=args.dr_region)
            if args.dr_region else None
        )
        self.arns = {p: k.arn for p, k in self.keys.items()}
        self.register_outputs({"keyArns": self.arns})

    def _key(self, args: KmsArgs, purpose: str, name: str, region: str | None = None) -> aws.kms.Key:
        """A rotated key (and its alias); `region` places it outside the stack's region."""
        extra = {"region": region} if region else {}
        region = region or args.region
        key = aws.kms.Key(
            name,
            description=f"taly {purpose} key ({name})",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.from_input(args.account_id).apply(lambda acct: _key_policy(acct, region, purpose)),
            tags={**args.tags, "purpose": purpose},
            opts=child(self, protect=args.protect),
            **extra,
        )
        aws.kms.Alias(f"{name}-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=child(self), **extra)
        return key
