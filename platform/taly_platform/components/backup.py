"""AWS Backup: a KMS-encrypted vault and a daily plan selecting resources by tag.

Retention per environment; with `crossRegionCopy`, each recovery point is copied to a vault in
the DR region. Resources opt in with the tag `taly:backup=true`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import BackupConfig
from .base import assume_role_policy, child

SELECTION_TAG = ("taly:backup", "true")


@dataclass
class BackupArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    config: BackupConfig
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool = False
    dr_region: str | None = None
    dr_kms_key_arn: pulumi.Input[str] | None = None


class Backup(pulumi.ComponentResource):
    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:backup:Backup", name, None, opts)
        cfg, n, tags = args.config, args.prefix, args.tags
        self.vault = aws.backup.Vault(f"{n}-vault", name=f"{n}-vault", kms_key_arn=args.kms_key_arn, tags=tags,
                                      opts=child(self, protect=args.protect))
        copy_actions = []
        if cfg.cross_region_copy:
            if not (args.dr_region and args.dr_kms_key_arn):
                raise ValueError("cross-region backup copy needs a DR region and a key there")
            dr_vault = aws.backup.Vault(f"{n}-vault-dr", name=f"{n}-vault-dr", kms_key_arn=args.dr_kms_key_arn,
                                        region=args.dr_region, tags=tags, opts=child(self, protect=args.protect))
            copy_actions = [{"destination_vault_arn": dr_vault.arn, "lifecycle": {"delete_after": cfg.copy_retention_days}}]
        self.plan = aws.backup.Plan(
            f"{n}-daily", name=f"{n}-daily",
            rules=[{
                "rule_name": "daily", "target_vault_name": self.vault.name, "schedule": cfg.schedule,
                "start_window": 60, "completion_window": 360,
                "lifecycle": {"delete_after": cfg.retention_days},
                "copy_actions": copy_actions,
                "recovery_point_tags": tags,
            }],
            tags=tags, opts=child(self),
        )
        role = aws.iam.Role(f"{n}-backup", assume_role_policy=assume_role_policy("backup.amazonaws.com"), tags=tags, opts=child(self))
        for policy in ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"):
            aws.iam.RolePolicyAttachment(f"{n}-backup-{policy}", role=role.name,
                                         policy_arn=f"arn:aws:iam::aws:policy/service-role/{policy}", opts=child(self))
        aws.backup.Selection(
            f"{n}-tagged", name=f"{n}-tagged", plan_id=self.plan.id, iam_role_arn=role.arn,
            selection_tags=[{"type": "STRINGEQUALS", "key": SELECTION_TAG[0], "value": SELECTION_TAG[1]}],
            opts=child(self),
        )
        self.register_outputs({"vaultName": self.vault.name, "planId": self.plan.id})
