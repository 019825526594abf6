"""Rules over keys, secrets, logs, the audit trail, the WAF in front of the API, and IAM."""

from __future__ import annotations

import json
from typing import Any

from .model import Violation, rule
from .resources import KMS_KEY, LOG_GROUP, WEB_ACL, number

RATE_LIMIT_PER_MINUTE = 100  # the seeds: 100 requests a minute per user
REQUIRED_MANAGED_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
INLINE_POLICIES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/userPolicy:UserPolicy",
                   "aws:iam/groupPolicy:GroupPolicy")


@rule("kms-rotation", "mandatory", "Customer-managed KMS keys rotate.", "Key material does not live forever.")
def kms_rotation(view):
    for k in view.of_type(KMS_KEY):
        if k.props.get("enableKeyRotation") is not True:
            yield Violation(k.name, "key rotation is off")


@rule("kms-prod-deletion-window", "mandatory", "Prod KMS keys wait the longest deletion window (30 days).",
      "A key scheduled for deletion by mistake makes every backup under it unreadable; 30 days is the time to "
      "notice and cancel (AWS FSBP KMS.3).")
def kms_prod_deletion_window(view):
    if view.prod:
        for k in view.of_type(KMS_KEY):
            days = number(k.props.get("deletionWindowInDays"), 30)
            if days < 30:
                yield Violation(k.name, f"deletion window {days:g} days (< 30) in prod")


@rule("secrets-kms", "mandatory", "Secrets Manager secrets use a customer-managed key.", "Secrets readable only by who may use the key.")
def secrets_kms(view):
    for s in view.of_type("aws:secretsmanager/secret:Secret"):
        if not s.props.get("kmsKeyId"):
            yield Violation(s.name, "no kmsKeyId")


@rule("logs-encrypted", "mandatory", "CloudWatch log groups are KMS-encrypted and expire.", "Logs carry data too; encryption at rest on every log.")
def logs_encrypted(view):
    for g in view.of_type(LOG_GROUP):
        if not g.props.get("kmsKeyId"):
            yield Violation(g.name, "no kmsKeyId")
        if not g.props.get("retentionInDays"):
            yield Violation(g.name, "kept forever (no retentionInDays)")


@rule("sns-encrypted", "mandatory", "SNS topics are encrypted with KMS.",
      "AWS FSBP SNS.1: alarm notifications name resources and carry metric values.")
def sns_encrypted(view):
    for t in view.of_type("aws:sns/topic:Topic"):
        if not t.props.get("kmsMasterKeyId"):
            yield Violation(t.name, "no kmsMasterKeyId")


@rule("cloudtrail-on", "mandatory", "A multi-region CloudTrail is logging, with log-file validation and KMS.",
      "Every API call in the account is on the record (the seeds' security: CloudTrail; AWS FSBP CloudTrail.1, .2, .4).")
def cloudtrail_on(view):
    trails = view.of_type("aws:cloudtrail/trail:Trail")
    if not trails:
        yield Violation("(stack)", "no CloudTrail trail")
    for t in trails:
        for key in ("isMultiRegionTrail", "enableLogFileValidation", "includeGlobalServiceEvents"):
            if not t.props.get(key):
                yield Violation(t.name, f"{key} is off")
        if t.props.get("enableLogging") is False:  # the provider's default is true
            yield Violation(t.name, "logging is switched off (enableLogging: false)")
        if not t.props.get("kmsKeyId"):
            yield Violation(t.name, "not KMS-encrypted")


def _statements(acl_rule: dict[str, Any]) -> dict[str, Any]:
    return acl_rule.get("statement") or {}


@rule("waf-rate-limit", "mandatory", "The WAF blocks a client past 100 requests a minute.",
      "The seeds' rate limiting: 100 requests a minute per user (per client IP at the edge).")
def waf_rate_limit(view):
    for acl in view.of_type(WEB_ACL):
        limits = []
        for r in acl.props.get("rules") or []:
            rate = _statements(r).get("rateBasedStatement")
            if rate and "block" in (r.get("action") or {}):
                window = number(rate.get("evaluationWindowSec"), 300)  # WAF's default window is 5 minutes
                limits.append(number(rate.get("limit"), float("inf")) * 60 / window)
        if not limits:
            yield Violation(acl.name, "no rate-based rule that blocks")
        elif min(limits) > RATE_LIMIT_PER_MINUTE:
            yield Violation(acl.name, f"the strictest rate limit allows {min(limits):g} requests a minute "
                                      f"(> {RATE_LIMIT_PER_MINUTE})")


@rule("waf-managed-rules", "mandatory", "The WAF runs AWS's core and known-bad-inputs rule groups, blocking.",
      "The seeds' WAF rules for API protection; AWS's baseline managed rule groups (AWS FSBP WAF.10: an ACL has rules), "
      "not left in count mode.")
def waf_managed_rules(view):
    for acl in view.of_type(WEB_ACL):
        blocking = {(_statements(r).get("managedRuleGroupStatement") or {}).get("name")
                    for r in acl.props.get("rules") or [] if "count" not in (r.get("overrideAction") or {})}
        missing = [g for g in REQUIRED_MANAGED_GROUPS if g not in blocking]
        if missing:
            yield Violation(acl.name, f"not run (or only counted): {', '.join(missing)}")


@rule("waf-logging", "mandatory", "Every web ACL logs its requests.",
      "AWS FSBP WAF.11: a blocked customer or an attack is investigated from the WAF's log.")
def waf_logging(view):
    logged = {c.props.get("resourceArn") for c in view.of_type(
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration") if c.props.get("logDestinationConfigs")}
    for acl in view.of_type(WEB_ACL):
        name = acl.props.get("name") or acl.name
        if not any(str(arn).split("/")[-2:-1] == [name] or arn == acl.props.get("arn") for arn in logged):
            yield Violation(acl.name, "no logging configuration")


def _allows_everything(statement: dict[str, Any]) -> bool:
    def as_list(v: Any) -> list:
        return v if isinstance(v, list) else [v]

    return (statement.get("Effect") == "Allow" and "*" in as_list(statement.get("Action"))
            and "*" in as_list(statement.get("Resource")))


@rule("iam-no-admin", "mandatory", "No IAM policy of the stack allows every action on every resource.",
      "AWS FSBP IAM.1; the seeds' IAM roles with least privilege.")
def iam_no_admin(view):
    for p in view.of_type(*INLINE_POLICIES):
        try:
            doc = json.loads(p.props.get("policy") or "{}")
        except (TypeError, ValueError):
            continue  # not known at plan time
        statements = (doc.get("Statement") or []) if isinstance(doc, dict) else []
        for s in statements if isinstance(statements, list) else [statements]:
            if isinstance(s, dict) and _allows_everything(s):
                yield Violation(p.name, "allows Action * on Resource *")


RULES = [
    kms_rotation,
    kms_prod_deletion_window,
    secrets_kms,
    logs_encrypted,
    sns_encrypted,
    cloudtrail_on,
    waf_rate_limit,
    waf_managed_rules,
    waf_logging,
    iam_no_admin,
]
