"""S3: each contracted bucket exists with versioning Enabled, default encryption configured, all four
public-access-block flags on, and the media bucket's lifecycle as contracted (Standard-IA, then
Glacier, on the stack's days; the local estate uses the stack defaults, as it is seeded with them).
"""

from __future__ import annotations

from functools import partial

from .model import Probe, Recorder
from ..environment import Environment
from .thresholds import Thresholds

C = "s3"
REQUIRES = ("boto3", "botocore.config")  # imported by the operation before the clocks start
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def probes(target: Environment, th: Thresholds) -> list[Probe]:
    t = th.timeouts.s3
    buckets = target.contract.buckets.model_dump()
    return [Probe(C, f"{kind}: bucket", partial(bucket, target, kind, name, t), liveness=True, timeout=t)
            for kind, name in buckets.items()]


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)


def _short(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]


def expected_lifecycle(target: Environment) -> tuple[int, int]:
    """(Standard-IA days, Glacier days) for the media bucket: the stack's storage settings, or the defaults."""
    from taly_platform.config import StorageConfig

    stack = None
    try:
        stack = target.stack()
    except Exception:  # noqa: BLE001 - an unreadable stack file: hold the bucket to the defaults
        stack = None
    storage = stack.storage if stack is not None else StorageConfig()
    return storage.media_infrequent_access_days, storage.media_glacier_days


def bucket(target: Environment, kind: str, name: str, timeout: float):
    rec = Recorder(C)
    s3 = target.aws_client("s3", timeout)
    try:
        s3.head_bucket(Bucket=name)
    except Exception as exc:  # noqa: BLE001 - a missing (or unreachable) bucket is the verdict
        code = _code(exc)
        observed = "missing" if code in ("404", "NoSuchBucket", "NotFound") else "no answer"
        rec.add(f"{kind}: bucket", "fail", observed, "exists", f"HeadBucket {name}: {code}: {_short(exc)}")
        return rec.results
    rec.add(f"{kind}: bucket", "ok", "exists", "exists", f"HeadBucket {name}")

    status = s3.get_bucket_versioning(Bucket=name).get("Status") or "never enabled"
    rec.add(f"{kind}: versioning", "ok" if status == "Enabled" else "fail", status, "Enabled",
            f"GetBucketVersioning {name} -> Status={status}")

    try:
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        algos = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
        algos = [a for a in algos if a]
        rec.add(f"{kind}: encryption", "ok" if algos else "fail", ", ".join(algos) or "no default rule",
                "default encryption", f"GetBucketEncryption {name} -> {', '.join(algos) or 'no rule'}")
    except Exception as exc:  # noqa: BLE001
        code = _code(exc)
        if code != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rec.add(f"{kind}: encryption", "fail", "none", "default encryption", f"GetBucketEncryption {name}: {code}")

    try:
        flags = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        off = [f for f in PAB_FLAGS if not flags.get(f)]
        rec.add(f"{kind}: public access block", "fail" if off else "ok",
                f"{len(PAB_FLAGS) - len(off)} of 4 on", "all 4 on",
                f"GetPublicAccessBlock {name}" + (f" -> off: {', '.join(off)}" if off else " -> all true"))
    except Exception as exc:  # noqa: BLE001
        code = _code(exc)
        if code != "NoSuchPublicAccessBlockConfiguration":
            raise
        rec.add(f"{kind}: public access block", "fail", "none", "all 4 on", f"GetPublicAccessBlock {name}: {code}")

    if kind == "media":
        ia, glacier = expected_lifecycle(target)
        want = f"STANDARD_IA at {ia} d, GLACIER at {glacier} d"
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=name).get("Rules") or []
        except Exception as exc:  # noqa: BLE001
            code = _code(exc)
            if code != "NoSuchLifecycleConfiguration":
                raise
            rec.add(f"{kind}: lifecycle", "fail", "none", want, f"GetBucketLifecycleConfiguration {name}: {code}")
            return rec.results
        transitions = {t.get("StorageClass"): t.get("Days")
                       for r in rules if r.get("Status") == "Enabled" for t in r.get("Transitions") or []}
        got = ", ".join(f"{c} at {d} d" for c, d in sorted(transitions.items(), key=lambda x: x[1] or 0)) or "none"
        ok = transitions.get("STANDARD_IA") == ia and transitions.get("GLACIER") == glacier
        rec.add(f"{kind}: lifecycle", "ok" if ok else "fail", got, want,
                f"GetBucketLifecycleConfiguration {name}: {len(rules)} rule(s)")
    return rec.results
