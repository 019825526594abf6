"""RDS PostgreSQL: encrypted, TLS-only, in the database subnets, reachable only from the cluster.

Restore drills (`taly drill restore --from snapshot|pitr`) put their scratch instance into the same
subnet group but a security group of their own, which the cluster cannot reach: 5432 only from the
stack's `database.drillClientCidrs` (none by default), no egress.

Multi-AZ, read replicas, deletion protection, the final snapshot and cross-region replication of
automated backups (DR, RPO < 1 h) all come from stack config. The master password is generated
(see `secrets`), not RDS-managed: RDS-managed master passwords cannot be combined with replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import DatabaseConfig
from .base import child, cluster_only_security_group

BACKUP_TAG = {"taly:backup": "true"}
MASTER_USERNAME = "taly_admin"


@dataclass
class DatabaseArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    config: DatabaseConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    client_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    master_password: pulumi.Input[str]
    tags: dict[str, str]
    protect: bool = False
    dr_region: str | None = None
    dr_kms_key_arn: pulumi.Input[str] | None = None


class Database(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:database:Database", name, None, opts)
        cfg, n, tags = args.config, args.prefix, args.tags
        major = cfg.engine_version.split(".")[0]

        subnets = aws.rds.SubnetGroup(f"{n}-postgres", subnet_ids=args.subnet_ids, tags=tags, opts=child(self))
        self.subnet_group = subnets
        self.drill_security_group = aws.ec2.SecurityGroup(
            f"{n}-postgres-drill", vpc_id=args.vpc_id,
            description=("Restore drills only: scratch PostgreSQL restored from a snapshot or a point in time; "
                         "no access from the cluster"),
            ingress=[{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_blocks": list(cfg.drill_client_cidrs),
                      "description": "PostgreSQL from the drill runners"}] if cfg.drill_client_cidrs else [],
            egress=[], tags={**tags, "Name": f"{n}-postgres-drill", "purpose": "restore-drill"}, opts=child(self),
        )
        self.security_group = cluster_only_security_group(
            self, f"{n}-postgres", vpc_id=args.vpc_id, client_security_group_id=args.client_security_group_id,
            ports={5432: "PostgreSQL from the EKS cluster"}, description="PostgreSQL from the EKS cluster only", tags=tags,
        )
        params = aws.rds.ParameterGroup(
            f"{n}-postgres{major}", family=f"postgres{major}", description="taly: TLS only, slow-query logging",
            parameters=[
                {"name": "rds.force_ssl", "value": "1"},
                {"name": "max_connections", "value": str(cfg.max_connections), "apply_method": "pending-reboot"},
                {"name": "log_min_duration_statement", "value": "1000"},
                {"name": "idle_in_transaction_session_timeout", "value": "600000"},
                # Drills read when the source last wrote (pg_last_committed_xact) to report what a restore misses.
                {"name": "track_commit_timestamp", "value": "1", "apply_method": "pending-reboot"},
            ],
            tags=tags, opts=child(self),
        )
        common = dict(
            instance_class=cfg.instance_class, storage_encrypted=True, kms_key_id=args.kms_key_arn,
            vpc_security_group_ids=[self.security_group.id], parameter_group_name=params.name, publicly_accessible=False,
            performance_insights_enabled=True, performance_insights_kms_key_id=args.kms_key_arn,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            auto_minor_version_upgrade=True, deletion_protection=cfg.deletion_protection, copy_tags_to_snapshot=True,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"], ca_cert_identifier="rds-ca-rsa2048-g1",
        )
        self.primary = aws.rds.Instance(
            f"{n}-postgres", identifier=f"{n}-postgres", engine="postgres", engine_version=cfg.engine_version,
            allocated_storage=cfg.allocated_storage_gib, max_allocated_storage=cfg.max_allocated_storage_gib,
            storage_type="gp3", db_name=cfg.database_name, username=MASTER_USERNAME, password=args.master_password,
            db_subnet_group_name=subnets.name, multi_az=cfg.multi_az,
            backup_retention_period=cfg.backup_retention_days, backup_window=cfg.backup_window,
            maintenance_window=cfg.maintenance_window, delete_automated_backups=False,
            skip_final_snapshot=not cfg.final_snapshot,
            final_snapshot_identifier=f"{n}-postgres-final" if cfg.final_snapshot else None,
            tags={**tags, **BACKUP_TAG, "role": "primary"},
            opts=child(self, protect=args.protect),
            **common,
        )
        self.replicas = [
            aws.rds.Instance(
                f"{n}-postgres-replica-{i}", identifier=f"{n}-postgres-replica-{i}", replicate_source_db=self.primary.identifier,
                skip_final_snapshot=True, backup_retention_period=0, tags={**tags, "role": "replica"},
                opts=child(self, protect=args.protect), **common,
            )
            for i in range(1, cfg.read_replicas + 1)
        ]
        if cfg.cross_region_backup_replication:
            if not (args.dr_region and args.dr_kms_key_arn):
                raise ValueError("cross-region backup replication needs a DR region and a key there")
            aws.rds.InstanceAutomatedBackupsReplication(
                f"{n}-postgres-backups-dr", source_db_instance_arn=self.primary.arn, kms_key_id=args.dr_kms_key_arn,
                retention_period=cfg.backup_retention_days, region=args.dr_region, opts=child(self),
            )

        self.endpoint = self.primary.address
        self.port = self.primary.port
        self.replica_endpoints = pulumi.Output.all(*[r.address for r in self.replicas])
        self.register_outputs({"primaryEndpoint": self.endpoint, "replicaEndpoints": self.replica_endpoints})
