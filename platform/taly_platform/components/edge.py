"""The edge and the audit trail: a WAF web ACL for the public API, and CloudTrail.

The ACL blocks an IP past the seeds' rate (100 requests a minute) and runs AWS managed rule
groups; the load balancer of the api-gateway Ingress attaches it. CloudTrail records every
region's API calls with log-file validation, KMS-encrypted, into the logs bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ..config import EdgeConfig
from .base import child


@dataclass
class EdgeArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    config: EdgeConfig
    logs_bucket: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    tags: dict[str, str]
    trail_depends_on: list[pulumi.Resource]


def cloudtrail_bucket_statements(account_id: pulumi.Input[str]) -> list[dict]:
    """What the logs bucket policy must allow for CloudTrail (Resource: suffixes of the bucket ARN)."""
    prefix = pulumi.Output.from_input(account_id).apply(lambda a: f"/cloudtrail/AWSLogs/{a}/*")
    return [
        {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": [""]},
        {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": [prefix]},
    ]


def _visibility(metric: str) -> dict:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


class Edge(pulumi.ComponentResource):
    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:edge:Edge", name, None, opts)
        cfg, n, tags = args.config, args.prefix, args.tags
        rules = [{
            "name": "per-ip-rate-limit", "priority": 0, "action": {"block": {}},
            "statement": {"rate_based_statement": {
                "limit": cfg.rate_limit_per_minute, "evaluation_window_sec": 60, "aggregate_key_type": "IP"}},
            "visibility_config": _visibility(f"{n}-rate-limit"),
        }]
        for i, group in enumerate(cfg.managed_rule_groups, start=1):
            rules.append({
                "name": group, "priority": i, "override_action": {"none": {}},
                "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
                "visibility_config": _visibility(f"{n}-{group}"),
            })
        self.web_acl = aws.wafv2.WebAcl(
            f"{n}-api", name=f"{n}-api", scope="REGIONAL", default_action={"allow": {}}, rules=rules,
            visibility_config=_visibility(f"{n}-api"), tags=tags, opts=child(self),
        )
        waf_logs = aws.cloudwatch.LogGroup(
            f"{n}-waf-logs", name=f"aws-waf-logs-{n}", retention_in_days=cfg.trail_retention_days,
            kms_key_id=args.logs_key_arn, tags=tags, opts=child(self),
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{n}-api-logging", resource_arn=self.web_acl.arn, log_destination_configs=[waf_logs.arn], opts=child(self),
        )
        self.trail = aws.cloudtrail.Trail(
            f"{n}-trail", name=f"{n}-trail", s3_bucket_name=args.logs_bucket, s3_key_prefix="cloudtrail",
            is_multi_region_trail=True, include_global_service_events=True, enable_log_file_validation=True,
            enable_logging=True, kms_key_id=args.logs_key_arn, tags=tags,
            opts=child(self, depends_on=args.trail_depends_on),
        )
        self.web_acl_arn = self.web_acl.arn
        self.register_outputs({"webAclArn": self.web_acl_arn, "trailArn": self.trail.arn})
