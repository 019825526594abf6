"""The AWS and Secrets Manager adapters against moto_server over HTTP (conftest.py `moto_server`): the standard
chains (AWS_ENDPOINT_URL, the key variables) for cloud environments, the emulator's own endpoint and keys
locally, one client per service, and the one Secrets Manager reader."""

from __future__ import annotations

import json

import pytest

from taly_ops.adapters.aws import Aws, AwsTarget
from taly_ops.adapters.secrets import SecretsReader, SecretUnreadable
from taly_ops.local import aws_emulator

pytestmark = pytest.mark.integration


@pytest.fixture
def cloud_chain(moto_server, monkeypatch, tmp_path):
    """The process environment a cloud run has: credentials and the endpoint from the standard variables only."""
    for key, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


def test_a_cloud_target_follows_aws_endpoint_url_and_the_credential_chain(cloud_chain):
    aws = Aws(AwsTarget("eu-west-1"))  # no endpoint, no keys: what a contract gives
    aws.client("s3").create_bucket(Bucket="taly-adapter-chain",
                                   CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    seen = {b["Name"] for b in aws_emulator.client("s3", cloud_chain).list_buckets()["Buckets"]}
    assert "taly-adapter-chain" in seen  # it went to the endpoint the variable names
    assert aws.client("s3") is aws.client("s3")  # one client per service
    probe = aws.client("s3", timeout=2.0)
    assert probe is not aws.client("s3")
    assert probe.meta.config.retries["total_max_attempts"] == 1 and probe.meta.config.read_timeout == 1.5


def test_the_emulator_target_needs_no_environment(moto_server, monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    aws = Aws(aws_emulator.target(moto_server))
    assert aws.target.emulated and aws.frozen_credentials().access_key == aws_emulator.ACCESS_KEY
    assert aws.client("sts").get_caller_identity()["Account"]


def test_the_secrets_reader_reads_once_remembers_values_and_names_what_is_wrong(moto_server):
    aws = Aws(aws_emulator.target(moto_server))
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="taly/adapter/db", SecretString=json.dumps(
        {"username": "taly", "password": "s3cret-value", "host": "db.example"}))["ARN"]
    broken = sm.create_secret(Name="taly/adapter/broken", SecretString="not json")["ARN"]
    reader = SecretsReader(aws)
    assert reader.json(arn, needs=("username", "password"))["password"] == "s3cret-value"
    assert "s3cret-value" in reader.revealed and "db.example" not in reader.revealed  # only secret-looking keys
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "taly", "password": "changed"}))
    assert reader.json(arn)["password"] == "s3cret-value"  # read once per run
    with pytest.raises(SecretUnreadable, match="has no token"):
        reader.json(arn, needs=("token",))
    with pytest.raises(SecretUnreadable, match="is not a JSON object"):
        reader.json(broken)
    with pytest.raises(SecretUnreadable, match="ResourceNotFoundException"):
        reader.json("arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing")
