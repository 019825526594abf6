"""The whole estate of one environment: every component, wired together, and its contract."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from ..config import StackConfig
from .kms import Kms, KmsArgs
from .network import Network, NetworkArgs


class Estate:
    def __init__(self, config: StackConfig) -> None:
        self.config = c = config
        n, tags = c.name_prefix, c.tags
        protect = c.protection.protect_stateful
        self.account_id = aws.get_caller_identity_output().account_id
        dr_needed = c.database.cross_region_backup_replication or c.storage.backups_cross_region_replication or c.backup.cross_region_copy

        self.kms = Kms(KmsArgs(name=n, region=c.region, account_id=self.account_id, tags=tags,
                               dr_region=c.dr_region if dr_needed else None, protect=protect))
        self.network = Network(NetworkArgs(name=n, region=c.region, config=c.network,
                                           logs_key_arn=self.kms.arns["logs"], tags=tags))

    def contract(self) -> dict[str, Any]:
        c = self.config
        return {
            "environment": c.environment,
            "region": c.region,
            "dr_region": c.dr_region,
            "account_id": self.account_id,
            "vpc_id": self.network.vpc_id,
            "kms_keys": self.kms.arns,
        }
