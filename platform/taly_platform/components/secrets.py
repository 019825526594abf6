"""Generated credentials in Secrets Manager, and each service's non-secret settings in Parameter Store.

Passwords are made by `random.RandomPassword` (kept in Pulumi state as secrets, never in a stack
file) and stored KMS-encrypted in Secrets Manager. Settings are plain SSM String parameters
under `/taly/<env>/<service>/`, which is what the services' IRSA roles may read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ..catalog import CATALOG
from .base import child


@dataclass
class CredentialSpec:
    purpose: str  # "database", "cache", "broker"
    username: str | None
    length: int = 32
    # ElastiCache AUTH and Amazon MQ refuse some punctuation; letters and digits are always safe.
    special: bool = False


@dataclass
class SecretsArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    environment: str
    kms_key_arn: pulumi.Input[str]
    credentials: list[CredentialSpec]
    tags: dict[str, str]
    recovery_window_days: int = 30


class Credential:
    def __init__(self, secret: aws.secretsmanager.Secret, password: pulumi.Output[str], username: str | None) -> None:
        self.secret = secret
        self.arn = secret.arn
        self.password = password
        self.username = username


class Secrets(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:security:Secrets", name, None, opts)
        self.credentials: dict[str, Credential] = {}
        for spec in args.credentials:
            name = f"{args.prefix}-{spec.purpose}"
            password = random.RandomPassword(name, length=spec.length, special=spec.special, min_numeric=2, opts=child(self))
            secret = aws.secretsmanager.Secret(
                name, name=f"taly/{args.environment}/{spec.purpose}/credentials", kms_key_id=args.kms_key_arn,
                recovery_window_in_days=args.recovery_window_days, tags={**args.tags, "purpose": spec.purpose},
                opts=child(self),
            )
            aws.secretsmanager.SecretVersion(
                name, secret_id=secret.id,
                secret_string=pulumi.Output.secret(password.result).apply(
                    lambda pw, u=spec.username: json.dumps({"username": u, "password": pw} if u else {"password": pw})
                ),
                opts=child(self),
            )
            self.credentials[spec.purpose] = Credential(secret, pulumi.Output.secret(password.result), spec.username)
        self.register_outputs({"secretArns": {k: c.arn for k, c in self.credentials.items()}})


@dataclass
class ParametersArgs:
    prefix: str  # of the AWS resources\' names, e.g. "taly-prod"
    environment: str
    settings: dict[str, pulumi.Input[str]]  # shared settings (endpoints, bucket names)
    log_level: str
    tags: dict[str, str]


def parameter_prefix(environment: str, service: str | None = None) -> str:
    return f"/taly/{environment}/" + (f"{service}/" if service else "")


class Parameters(pulumi.ComponentResource):
    """One SSM parameter per service and setting; a service only sees the settings it uses."""

    def __init__(self, name: str, args: ParametersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("taly:config:Parameters", name, None, opts)
        uses = {"database": ("DATABASE_HOST", "DATABASE_READER_HOSTS", "DATABASE_PORT", "DATABASE_NAME"),
                "cache": ("REDIS_HOST", "REDIS_PORT"), "broker": ("AMQP_ENDPOINT",)}
        for svc in CATALOG:
            keys = ["LOG_LEVEL", "PORT"]
            for need, settings in uses.items():
                if getattr(svc, need):
                    keys += settings
            if svc.media != "none":
                keys.append("MEDIA_BUCKET")
            values = {"LOG_LEVEL": args.log_level, "PORT": str(svc.port), **args.settings}
            for key in keys:
                aws.ssm.Parameter(
                    f"{args.prefix}-{svc.name}-{key.lower().replace('_', '-')}",
                    name=f"{parameter_prefix(args.environment, svc.name)}{key}", type="String",
                    insecure_value=values[key], tags={**args.tags, "service": svc.name}, opts=child(self),
                )
        self.prefix = parameter_prefix(args.environment)
        self.register_outputs({"prefix": self.prefix})
