"""S3: media, backups and logs buckets, each private, owner-enforced, SSE-KMS and TLS-only.

Media moves to Standard-IA at 30 days and Glacier at 90 (the seeds' lifecycle), with old
versions expiring. Backups are versioned and, where configured, replicated to the DR region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ..config import StorageConfig
from .base import assume_role_policy, child, policy_json


@dataclass
class StorageArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    account_id: pulumi.Input[str]
    config: StorageConfig
    data_key_arn: pulumi.Input[str]
    backup_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool = False
    dr_region: str | None = None
    dr_backup_key_arn: pulumi.Input[str] | None = None
    # Extra statements for the logs bucket policy (CloudTrail's delivery, from the edge component).
    logs_policy_statements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SecureBucketArgs:
    bucket_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool
    versioned: bool = True
    # Statements added to the deny-non-TLS policy; their Resource entries are suffixes of the bucket's ARN.
    extra_statements: list[dict[str, Any]] = field(default_factory=list)
    region: str | None = None  # None: the stack's region


class SecureBucket(pulumi.ComponentResource):
    """A bucket with every public-access block, BucketOwnerEnforced, SSE-KMS and a deny-non-TLS policy."""

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:storage:SecureBucket", name, None, opts)
        bucket_name, kms_key_arn, tags, protect, versioned, region = (
            args.bucket_name, args.kms_key_arn, args.tags, args.protect, args.versioned, args.region)
        r = {"region": region} if region else {}
        self.bucket = aws.s3.Bucket(name, bucket=bucket_name, force_destroy=False, tags=tags, opts=child(self, protect=protect), **r)
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=self.bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child(self), **r,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child(self), **r,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": kms_key_arn},
                    "bucket_key_enabled": True}],
            opts=child(self), **r,
        )
        self.versioning = (
            aws.s3.BucketVersioning(
                f"{name}-versioning", bucket=self.bucket.id, versioning_configuration={"status": "Enabled"}, opts=child(self), **r,
            ) if versioned else None
        )
        arn = self.bucket.arn
        statements = [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, arn.apply(lambda a: f"{a}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }]
        for st in args.extra_statements:
            # Extra statements name resources as suffixes of this bucket's ARN ("" or "/prefix/*").
            statements.append(st | {"Resource": [pulumi.Output.concat(arn, p) for p in st["Resource"]]})
        aws.s3.BucketPolicy(
            f"{name}-policy", bucket=self.bucket.id, policy=policy_json(statements),
            opts=child(self, depends_on=[self.public_access_block]), **r,
        )
        self.name = self.bucket.bucket
        self.arn = arn
        self.register_outputs({"bucket": self.name, "arn": self.arn})


class Storage(pulumi.ComponentResource):
    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:storage:Storage", name, None, opts)
        n, cfg, tags = args.prefix, args.config, args.tags
        suffix = pulumi.Output.from_input(args.account_id)

        def bucket(purpose: str, key: pulumi.Input[str], **kw: Any) -> SecureBucket:
            return SecureBucket(f"{n}-{purpose}", SecureBucketArgs(
                bucket_name=suffix.apply(lambda a: f"{n}-{purpose}-{a}"), kms_key_arn=key,
                tags={**tags, "purpose": purpose}, protect=args.protect, **kw,
            ), opts=child(self))

        self.media = bucket("media", args.data_key_arn)
        self.backups = bucket("backups", args.backup_key_arn)
        self.logs = bucket("logs", args.logs_key_arn, extra_statements=args.logs_policy_statements)

        aws.s3.BucketLifecycleConfiguration(
            f"{n}-media-lifecycle", bucket=self.media.bucket.id,
            rules=[{
                "id": "tiering", "status": "Enabled", "filter": {"prefix": ""},
                "transitions": [
                    {"days": cfg.media_infrequent_access_days, "storage_class": "STANDARD_IA"},
                    {"days": cfg.media_glacier_days, "storage_class": "GLACIER"},
                ],
                "noncurrent_version_expiration": {"noncurrent_days": cfg.noncurrent_version_expiry_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }],
            opts=child(self, depends_on=[self.media.versioning]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{n}-backups-lifecycle", bucket=self.backups.bucket.id,
            rules=[{
                "id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": cfg.noncurrent_version_expiry_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }],
            opts=child(self, depends_on=[self.backups.versioning]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{n}-logs-lifecycle", bucket=self.logs.bucket.id,
            rules=[{
                "id": "expire-logs", "status": "Enabled", "filter": {"prefix": ""},
                "expiration": {"days": cfg.log_expiry_days},
                "noncurrent_version_expiration": {"noncurrent_days": 30},
            }],
            opts=child(self, depends_on=[self.logs.versioning]),
        )

        self.backups_replica = None
        if cfg.backups_cross_region_replication:
            if not (args.dr_region and args.dr_backup_key_arn):
                raise ValueError("backups cross-region replication needs a DR region and its backup key")
            self.backups_replica = self._replicate(args, suffix)

        self.register_outputs({"media": self.media.name, "backups": self.backups.name, "logs": self.logs.name})

    def _replicate(self, args: StorageArgs, suffix: pulumi.Output[str]) -> SecureBucket:
        n = args.prefix
        replica = SecureBucket(f"{n}-backups-dr", SecureBucketArgs(
            bucket_name=suffix.apply(lambda a: f"{n}-backups-dr-{a}"), kms_key_arn=args.dr_backup_key_arn,
            tags={**args.tags, "purpose": "backups-dr"}, protect=args.protect, region=args.dr_region,
        ), opts=child(self))
        # Replicated deletes leave old versions behind in the copy too; they expire as in the source (AWS FSBP S3.13).
        aws.s3.BucketLifecycleConfiguration(
            f"{n}-backups-dr-lifecycle", bucket=replica.bucket.id, region=args.dr_region,
            rules=[{
                "id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": args.config.noncurrent_version_expiry_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }],
            opts=child(self, depends_on=[replica.versioning]),
        )
        role = aws.iam.Role(f"{n}-backups-replication", assume_role_policy=assume_role_policy("s3.amazonaws.com"),
                            tags=args.tags, opts=child(self))
        src, dst = self.backups.arn, replica.arn
        aws.iam.RolePolicy(
            f"{n}-backups-replication", role=role.id,
            policy=policy_json([
                {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": [src]},
                {"Effect": "Allow", "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                 "Resource": [src.apply(lambda a: f"{a}/*")]},
                {"Effect": "Allow", "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                 "Resource": [dst.apply(lambda a: f"{a}/*")]},
                {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [args.backup_key_arn]},
                {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": [args.dr_backup_key_arn]},
            ]),
            opts=child(self),
        )
        aws.s3.BucketReplicationConfig(
            f"{n}-backups-replication", bucket=self.backups.bucket.id, role=role.arn,
            rules=[{
                "id": "to-dr-region", "status": "Enabled", "filter": {"prefix": ""},
                "delete_marker_replication": {"status": "Enabled"},
                "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
                "destination": {"bucket": dst, "storage_class": "STANDARD_IA",
                                "encryption_configuration": {"replica_kms_key_id": args.dr_backup_key_arn}},
            }],
            opts=child(self, depends_on=[self.backups.versioning, replica.versioning]),
        )
        return replica
