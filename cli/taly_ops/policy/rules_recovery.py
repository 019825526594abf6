"""Rules over AWS Backup: what is backed up, how often, for how long, encrypted, and copied off-region."""

from __future__ import annotations

from taly_platform.values import runs_at_least_daily

from .model import Violation, rule
from .resources import BACKUP_PLAN, VAULT, number, rds_primaries

SELECTION = "aws:backup/selection:Selection"
PROD_RETENTION_DAYS = 35  # AWS Config's backup-plan-min-frequency-and-min-retention-check default
RETENTION_DAYS = 7


def _rules(plan) -> list[dict]:
    return plan.props.get("rules") or []


@rule("backup-plan-retention", "mandatory",
      "AWS Backup plans run at least daily and keep recovery points >= 7 days (>= 35 days in prod).",
      "The seeds' DR: daily automated backups; AWS Config's backup-plan-min-frequency-and-min-retention-check "
      "(daily, 35 days) for prod.")
def backup_plan_retention(view):
    minimum = PROD_RETENTION_DAYS if view.prod else RETENTION_DAYS
    plans = view.of_type(BACKUP_PLAN)
    if not plans:
        yield Violation("(stack)", "no AWS Backup plan")
    for plan in plans:
        if not _rules(plan):
            yield Violation(plan.name, "the plan has no rule")
        for r in _rules(plan):
            name = r.get("ruleName", "?")
            if not runs_at_least_daily(str(r.get("schedule", ""))):
                yield Violation(plan.name, f"rule {name} runs less often than daily ({r.get('schedule')})")
            days = number((r.get("lifecycle") or {}).get("deleteAfter"), float("inf"))
            if days < minimum:
                yield Violation(plan.name, f"rule {name} keeps recovery points {days:g} days (< {minimum})")


@rule("backup-covers-databases", "mandatory", "An AWS Backup selection picks up every RDS primary (by its tags).",
      "A plan that selects nothing backs up nothing; the database is what the seeds' RPO is about.")
def backup_covers_databases(view):
    selections = view.of_type(SELECTION)
    for db in rds_primaries(view):
        tags = db.props.get("tags") or {}
        if not any(any(tags.get(t.get("key")) == t.get("value") for t in (s.props.get("selectionTags") or []))
                   or db.props.get("arn") in (s.props.get("resources") or []) for s in selections):
            yield Violation(db.name, "no AWS Backup selection selects it")


@rule("backup-vault-encrypted", "mandatory", "Backup vaults encrypt recovery points with a customer-managed KMS key.",
      "AWS FSBP Backup.1: recovery points are encrypted at rest, under a key that can be audited and revoked.")
def backup_vault_encrypted(view):
    for vault in view.of_type(VAULT):
        if not vault.props.get("kmsKeyArn"):
            yield Violation(vault.name, "no kmsKeyArn")


@rule("backup-prod-cross-region-copy", "mandatory",
      "Prod backup plans copy every recovery point to a vault in another region, kept >= 35 days.",
      "The seeds' DR: daily automated backups to off-region storage, cross-region replication.")
def backup_prod_cross_region_copy(view):
    if not view.prod:
        return
    for plan in view.of_type(BACKUP_PLAN):
        for r in _rules(plan):
            copies = [c for c in (r.get("copyActions") or [])
                      if number((c.get("lifecycle") or {}).get("deleteAfter"), float("inf")) >= PROD_RETENTION_DAYS]
            if not copies:
                yield Violation(plan.name, f"rule {r.get('ruleName', '?')} copies to no other region (>= 35 days) in prod")


RULES = [
    backup_plan_retention,
    backup_covers_databases,
    backup_vault_encrypted,
    backup_prod_cross_region_copy,
]
