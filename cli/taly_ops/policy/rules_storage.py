"""Rules over S3: encryption, exposure, versions, lifecycles and the off-region copy of backups."""

from __future__ import annotations

import json

from .model import Violation, rule
from .resources import BUCKET, bucket_companions, number, purpose

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


@rule("s3-encryption-kms", "mandatory", "Every bucket encrypts with SSE-KMS by default.",
      "Data at rest under a customer-managed key can be audited and revoked.")
def s3_encryption_kms(view):
    for bucket, sse in bucket_companions(view, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        rules = (sse.props.get("rules") or [{}]) if sse else [{}]
        default = rules[0].get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") != "aws:kms":
            yield Violation(bucket.name, "no default SSE-KMS encryption")


@rule("s3-public-access-blocked", "mandatory", "Every bucket has all four public-access blocks on.",
      "A bucket is never public; media reaches users through signed URLs or a CDN.")
def s3_public_access_blocked(view):
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket, pab in bucket_companions(view, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        missing = [k for k in keys if not (pab and pab.props.get(k) is True)]
        if missing:
            yield Violation(bucket.name, f"public access not blocked: {', '.join(missing)}")


@rule("s3-tls-only", "mandatory", "Every bucket policy denies requests without TLS.",
      "Data in transit is encrypted; aws:SecureTransport=false is refused.")
def s3_tls_only(view):
    for bucket, policy in bucket_companions(view, "aws:s3/bucketPolicy:BucketPolicy"):
        statements = json.loads(policy.props["policy"]).get("Statement", []) if policy else []
        if not any(s.get("Effect") == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                   for s in statements):
            yield Violation(bucket.name, "no policy statement denying aws:SecureTransport=false")


@rule("s3-owner-enforced", "advisory", "Every bucket disables ACLs (BucketOwnerEnforced).",
      "ACLs are how buckets become public by accident; ownership controls switch them off.")
def s3_owner_enforced(view):
    for bucket, own in bucket_companions(view, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"):
        if not own or (own.props.get("rule") or {}).get("objectOwnership") != "BucketOwnerEnforced":
            yield Violation(bucket.name, "object ownership is not BucketOwnerEnforced")


@rule("s3-versioning", "mandatory", "Every bucket keeps versions.",
      "Versions are the undo of an overwrite or delete, and replication needs them.")
def s3_versioning(view):
    for bucket, ver in bucket_companions(view, "aws:s3/bucketVersioning:BucketVersioning"):
        if not ver or (ver.props.get("versioningConfiguration") or {}).get("status") != "Enabled":
            yield Violation(bucket.name, "versioning is not enabled")


@rule("s3-lifecycle", "mandatory", "Every bucket has a lifecycle that expires old versions.",
      "AWS FSBP S3.13: with versioning on, overwritten and deleted objects otherwise stay (and are paid for) forever.")
def s3_lifecycle(view):
    for bucket, lifecycle in bucket_companions(view, LIFECYCLE):
        rules = [r for r in (lifecycle.props.get("rules") or []) if r.get("status") == "Enabled"] if lifecycle else []
        if not rules:
            yield Violation(bucket.name, "no enabled lifecycle rule")
        elif not any((r.get("noncurrentVersionExpiration") or {}).get("noncurrentDays") for r in rules):
            yield Violation(bucket.name, "old versions never expire (no noncurrentVersionExpiration)")


@rule("s3-media-tiering", "advisory", "Media moves to Standard-IA by day 30 and to Glacier by day 90.",
      "The seeds' S3 lifecycle: IA at 30 days, Glacier at 90 days (most media is read in its first month).")
def s3_media_tiering(view):
    for bucket, lifecycle in bucket_companions(view, LIFECYCLE):
        if purpose(bucket) != "media":
            continue
        moves = {t.get("storageClass"): number(t.get("days"), float("inf"))
                 for r in ((lifecycle.props.get("rules") or []) if lifecycle else []) if r.get("status") == "Enabled"
                 for t in r.get("transitions") or []}
        for storage_class, by_day in (("STANDARD_IA", 30), ("GLACIER", 90)):
            if moves.get(storage_class, float("inf")) > by_day:
                yield Violation(bucket.name, f"objects do not move to {storage_class} by day {by_day}")


@rule("s3-prod-backups-replicated", "mandatory", "Prod's backups bucket replicates to a bucket in the DR region.",
      "The seeds' DR: daily backups to off-region storage; a region's loss must not take the backups with it "
      "(AWS FSBP S3.7).")
def s3_prod_backups_replicated(view):
    if not view.prod:
        return
    regions = {b.props.get("bucket"): b.props.get("region") for b in view.of_type(BUCKET)}
    replications = view.keyed_by(REPLICATION)
    for bucket in view.of_type(BUCKET):
        if purpose(bucket) != "backups":
            continue
        config = replications.get(bucket.props.get("bucket"))
        rules = [r for r in ((config.props.get("rules") or []) if config else []) if r.get("status") == "Enabled"]
        if not rules:
            yield Violation(bucket.name, "the backups bucket is not replicated in prod")
            continue
        for r in rules:
            target = str((r.get("destination") or {}).get("bucket", "")).removeprefix("arn:aws:s3:::")
            if regions.get(target, "?") == bucket.props.get("region"):
                yield Violation(bucket.name, f"replicates to {target}, in the same region")


RULES = [
    s3_encryption_kms,
    s3_public_access_blocked,
    s3_tls_only,
    s3_owner_enforced,
    s3_versioning,
    s3_lifecycle,
    s3_media_tiering,
    s3_prod_backups_replicated,
]
