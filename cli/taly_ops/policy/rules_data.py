"""Rules over the data stores: RDS PostgreSQL, ElastiCache Redis, Amazon MQ, and protection of stateful resources."""

from __future__ import annotations

import re

from .model import Violation, rule
from .resources import MQ, RDS, REDIS, STATEFUL, number, rds_primaries, rds_replicas_of

BACKUPS_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
FUNCTION = "aws:lambda/function:Function"
SCHEDULE = "aws:scheduler/schedule:Schedule"
HOURLY = ("rate(1 hour)", "rate(60 minutes)", "cron(0 * * * ? *)")


@rule("rds-encrypted", "mandatory", "RDS storage is encrypted with a KMS key.", "Encryption at rest on every data store.")
def rds_encrypted(view):
    for db in view.of_type(RDS):
        if db.props.get("storageEncrypted") is not True or not db.props.get("kmsKeyId"):
            yield Violation(db.name, "storage not encrypted with a KMS key")


@rule("rds-private", "mandatory", "RDS instances are not publicly accessible.", "Databases live in private subnets only.")
def rds_private(view):
    for db in view.of_type(RDS):
        if db.props.get("publiclyAccessible"):
            yield Violation(db.name, "publiclyAccessible is true")


@rule("rds-backup-retention", "mandatory", "RDS primaries keep automated backups >= 7 days (point-in-time recovery).",
      "The seeds' DR: 7-day retention and PITR give RPO well under an hour.")
def rds_backup_retention(view):
    for db in rds_primaries(view):
        days = number(db.props.get("backupRetentionPeriod"))
        if days < 7:
            yield Violation(db.name, f"backup retention {days:g} days (< 7): no point-in-time recovery window")


@rule("rds-tls-enforced", "mandatory", "RDS parameter groups force TLS (rds.force_ssl=1).", "TLS on every connection to a data store.")
def rds_tls_enforced(view):
    groups = {g.props.get("name", g.name): g for g in view.of_type("aws:rds/parameterGroup:ParameterGroup")}
    for db in rds_primaries(view):
        group = groups.get(db.props.get("parameterGroupName"))
        params = {p.get("name"): str(p.get("value")) for p in (group.props.get("parameters") or [])} if group else {}
        if params.get("rds.force_ssl") != "1":
            yield Violation(db.name, "its parameter group does not set rds.force_ssl=1")


@rule("rds-prod-multi-az", "mandatory", "Prod RDS primaries are Multi-AZ.", "The seeds' HA: a zone failure is a failover, not an outage.")
def rds_prod_multi_az(view):
    if view.prod:
        for db in rds_primaries(view):
            if db.props.get("multiAz") is not True:
                yield Violation(db.name, "multiAz is not true in prod")


@rule("rds-prod-read-replica", "mandatory", "Prod RDS primaries keep at least one read replica.",
      "The seeds' failover procedure promotes a read replica to primary, and reads scale on replicas.")
def rds_prod_read_replica(view):
    if view.prod:
        for db in rds_primaries(view):
            if not rds_replicas_of(view, db):
                yield Violation(db.name, "no read replica to fail over to in prod")


@rule("rds-prod-cross-region-backups", "mandatory", "Prod RDS primaries replicate their automated backups to the DR region.",
      "The seeds' DR: point-in-time recovery and cross-region replication; a region's loss keeps RPO < 1 h.")
def rds_prod_cross_region_backups(view):
    if view.prod:
        replicated = {re.split(r"[:/]", str(r.props.get("sourceDbInstanceArn", "")))[-1]
                      for r in view.of_type(BACKUPS_REPLICATION) if number(r.props.get("retentionPeriod")) >= 7}
        for db in rds_primaries(view):
            if db.props.get("identifier") not in replicated:
                yield Violation(db.name, "automated backups are not replicated to another region (>= 7 days) in prod")


@rule("rds-prod-deletion-protection", "mandatory", "Prod RDS instances have deletion protection and a final snapshot.",
      "Nobody deletes the production database by accident.")
def rds_prod_deletion_protection(view):
    if view.prod:
        for db in view.of_type(RDS):
            if db.props.get("deletionProtection") is not True:
                yield Violation(db.name, "deletionProtection is not true in prod")
        for db in rds_primaries(view):
            if db.props.get("skipFinalSnapshot", True):
                yield Violation(db.name, "skipFinalSnapshot is true in prod")


@rule("rds-performance-insights", "advisory", "RDS instances have Performance Insights on.", "On-call needs query-level evidence.")
def rds_performance_insights(view):
    for db in view.of_type(RDS):
        if not db.props.get("performanceInsightsEnabled"):
            yield Violation(db.name, "Performance Insights is off")


@rule("rds-logs-exported", "mandatory", "RDS instances export their PostgreSQL log to CloudWatch Logs.",
      "AWS FSBP RDS.9: the database's own log (errors, slow queries) outlives the instance and reaches on-call.")
def rds_logs_exported(view):
    for db in view.of_type(RDS):
        if "postgresql" not in (db.props.get("enabledCloudwatchLogsExports") or []):
            yield Violation(db.name, "the postgresql log is not exported to CloudWatch Logs")


@rule("rds-storage-autoscaling", "advisory", "RDS primaries may grow their storage (maxAllocatedStorage above allocatedStorage).",
      "The seeds alert on low disk; storage autoscaling (terraform-aws-modules' max_allocated_storage) keeps a full "
      "disk from stopping writes before someone acts.")
def rds_storage_autoscaling(view):
    for db in rds_primaries(view):
        if number(db.props.get("maxAllocatedStorage")) <= number(db.props.get("allocatedStorage")):
            yield Violation(db.name, "storage cannot grow (maxAllocatedStorage <= allocatedStorage)")


@rule("minor-version-upgrades", "advisory", "RDS, Redis and Amazon MQ apply minor version upgrades automatically.",
      "AWS FSBP RDS.13, ElastiCache.2 and MQ.3: security patches arrive in the maintenance window, not never.")
def minor_version_upgrades(view):
    for r in view.of_type(RDS, REDIS, MQ):
        if r.props.get("autoMinorVersionUpgrade") is not True:
            yield Violation(r.name, "autoMinorVersionUpgrade is not true")


@rule("redis-encrypted", "mandatory", "Redis is encrypted at rest and in transit, with an AUTH token.",
      "Encryption at rest and TLS on every data store.")
def redis_encrypted(view):
    for rg in view.of_type(REDIS):
        missing = [k for k in ("atRestEncryptionEnabled", "transitEncryptionEnabled") if rg.props.get(k) is not True]
        if missing:
            yield Violation(rg.name, f"not enabled: {', '.join(missing)}")
        if not rg.props.get("authToken"):
            yield Violation(rg.name, "no AUTH token")


@rule("redis-prod-multi-az", "mandatory", "Prod Redis has automatic failover across AZs.", "The seeds' HA: ElastiCache multi-AZ.")
def redis_prod_multi_az(view):
    if view.prod:
        for rg in view.of_type(REDIS):
            if not (rg.props.get("automaticFailoverEnabled") and rg.props.get("multiAzEnabled")):
                yield Violation(rg.name, "automatic failover / Multi-AZ is off in prod")


@rule("redis-snapshots", "advisory", "Redis keeps snapshots.", "A cache rebuilt from nothing is a thundering herd on the database.")
def redis_snapshots(view):
    for rg in view.of_type(REDIS):
        if not number(rg.props.get("snapshotRetentionLimit")):
            yield Violation(rg.name, "snapshot retention is 0")


@rule("redis-hourly-snapshots", "mandatory", "Every Redis replication group is snapshotted every hour.",
      "The seeds: Redis RDB snapshots every hour (RPO < 1 h); ElastiCache's own snapshot is daily.")
def redis_hourly_snapshots(view):
    hourly_targets = {str((s.props.get("target") or {}).get("arn", "")) for s in view.of_type(SCHEDULE)
                      if s.props.get("scheduleExpression") in HOURLY and (s.props.get("state") or "ENABLED") == "ENABLED"}
    snapshotted = {((f.props.get("environment") or {}).get("variables") or {}).get("REPLICATION_GROUP_ID")
                   for f in view.of_type(FUNCTION)
                   if any(arn.endswith((f":{f.props.get('name')}", f"/{f.props.get('name')}")) for arn in hourly_targets)}
    for rg in view.of_type(REDIS):
        if rg.props.get("replicationGroupId") not in snapshotted:
            yield Violation(rg.name, "no hourly snapshot schedule")


@rule("mq-private", "mandatory", "Amazon MQ brokers are not publicly accessible.", "The broker is reachable from the cluster only.")
def mq_private(view):
    for b in view.of_type(MQ):
        if b.props.get("publiclyAccessible"):
            yield Violation(b.name, "publiclyAccessible is true")


@rule("mq-prod-multi-az", "mandatory", "Prod brokers run CLUSTER_MULTI_AZ.", "The seeds' HA: Amazon MQ multi-AZ.")
def mq_prod_multi_az(view):
    if view.prod:
        for b in view.of_type(MQ):
            if b.props.get("deploymentMode") != "CLUSTER_MULTI_AZ":
                yield Violation(b.name, f"deploymentMode {b.props.get('deploymentMode')} in prod")


@rule("mq-logs", "advisory", "Brokers ship general logs.", "On-call needs the broker's own account of an incident.")
def mq_logs(view):
    for b in view.of_type(MQ):
        if not (b.props.get("logs") or {}).get("general"):
            yield Violation(b.name, "general logs are off")


@rule("prod-protected", "mandatory", "Prod stateful resources are protected (Pulumi `protect`).",
      "`pulumi destroy` or a refactor must never delete production data.")
def prod_protected(view):
    if view.prod:
        for r in view.of_type(*STATEFUL):
            if not r.protect:
                yield Violation(r.name, "stateful resource without protect=True in prod")


RULES = [
    rds_encrypted,
    rds_private,
    rds_backup_retention,
    rds_tls_enforced,
    rds_prod_multi_az,
    rds_prod_read_replica,
    rds_prod_cross_region_backups,
    rds_prod_deletion_protection,
    rds_performance_insights,
    rds_logs_exported,
    rds_storage_autoscaling,
    minor_version_upgrades,
    redis_encrypted,
    redis_prod_multi_az,
    redis_snapshots,
    redis_hourly_snapshots,
    mq_private,
    mq_prod_multi_az,
    mq_logs,
    prod_protected,
]
