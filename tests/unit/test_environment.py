"""One environment model: names, the resolver, typed endpoints, lazily built adapters, and the same
configuration error (exit 2, one message) from every command when the estate or contract is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taly_ops import environment
from taly_ops.app import app
from taly_ops.errors import BadInput

REPO = Path(__file__).resolve().parents[2]
LOCAL_COMMANDS = (
    ("health", "--env", "local"),
    ("backup", "create", "--env", "local"),
    ("backup", "list", "--env", "local"),
    ("drill", "restore", "--env", "local"),
    ("drill", "history", "--env", "local"),
    ("local", "status"),
)


def contract(env: str = "dev", **changes) -> dict:
    """A valid contract for `env`, shaped as the Pulumi program exports it."""
    data = {
        "environment": env, "region": "eu-west-1", "dr_region": "eu-central-1", "account_id": "123456789012",
        "vpc_id": "vpc-1",
        "cluster": {"name": f"taly-{env}", "endpoint": "https://eks", "oidc_provider_arn": "arn:oidc",
                    "namespace": "taly", "kube_context": f"taly-{env}"},
        "database": {"primary_id": f"taly-{env}-db", "primary_endpoint": "db.example.com", "port": 5432,
                     "database": "taly", "replica_ids": [f"taly-{env}-db-replica-1"],
                     "replica_endpoints": ["replica.example.com:5433"], "multi_az": True,
                     "master_secret_arn": "arn:secret:db", "subnet_group_name": "sg", "drill_security_group_id": "sg-1"},
        "cache": {"replication_group_id": "rg", "primary_endpoint": "cache.example.com", "reader_endpoint": "",
                  "port": 6379, "automatic_failover": True, "auth_secret_arn": "arn:secret:cache"},
        "broker": {"broker_id": "b-1", "broker_name": "mq", "deployment_mode": "CLUSTER_MULTI_AZ",
                   "credentials_secret_arn": "arn:secret:mq"},
        "buckets": {"media": "m", "backups": f"taly-{env}-backups", "logs": "l"},
        "backup": {"vault_name": "v", "plan_id": "p", "rpo_minutes": 60, "rto_minutes": 15},
        "kms_keys": {}, "service_roles": {}, "web_acl_arn": "arn:waf", "parameter_prefix": f"/taly/{env}/",
        "prometheus_endpoint": "https://aps.example.com/workspaces/ws-1/", "alarm_topic_arn": "arn:sns",
    }
    data.update(changes)
    return data


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: taly\n")
    monkeypatch.setenv("TALY_PROJECT_ROOT", str(tmp_path))
    monkeypatch.delenv("TALY_STATE_DIR", raising=False)
    return tmp_path


def test_one_list_of_names_and_one_unknown_environment_error():
    assert environment.NAMES == ("local", "dev", "staging", "prod")
    for name in environment.NAMES:
        assert environment.check_name(name) == name
    with pytest.raises(environment.UnknownEnvironment, match="unknown environment 'qa'; known: local, dev, staging, prod"):
        environment.check_name("qa")
    with pytest.raises(BadInput, match="^--to: unknown environment 'qa'"):
        environment.check_name("qa", "--to")


def test_every_command_names_an_unknown_environment_the_same_way(project):
    runner = CliRunner()
    for args in (("health", "--env", "qa"), ("backup", "list", "--env", "qa"), ("drill", "history", "--env", "qa"),
                 ("data", "refresh", "--from", "qa", "--to", "dev")):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 2, (args, result.output)
        assert "unknown environment 'qa'; known: local, dev, staging, prod" in result.stderr, (args, result.stderr)


def test_no_local_estate_is_exit_2_with_one_message_from_every_command(tmp_path):
    state_dir = tmp_path / "no-estate"
    runner = CliRunner()
    messages = set()
    for args in LOCAL_COMMANDS:
        result = runner.invoke(app, [*args, "--state-dir", str(state_dir)])
        assert result.exit_code == 2, (args, result.output)
        first = result.stderr.splitlines()[0]
        assert first == f"error: no local estate in {state_dir}: run `taly local up`", (args, result.stderr)
        messages.add(result.stderr)
    assert len(messages) == 1
    assert not state_dir.exists()  # nothing was created


def test_a_missing_contract_is_exit_2_with_one_message_from_every_command(project):
    runner = CliRunner()
    for args in (("health", "--env", "dev"), ("backup", "list", "--env", "dev"), ("backup", "create", "--env", "dev"),
                 ("drill", "restore", "--env", "dev"), ("drill", "history", "--env", "dev")):
        result = runner.invoke(app, list(args))
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: no contract for dev: ") and environment.contract_command("dev") in \
            result.stderr, (args, result.stderr)
    assert not (project / ".taly").exists()


def test_a_cloud_environment_resolves_to_typed_endpoints_without_contacting_anything(project):
    (project / "contracts").mkdir()
    (project / "contracts" / "dev.json").write_text(json.dumps(contract()))
    env = environment.resolve("dev")
    assert env.name == "dev" and not env.is_local and env.region == "eu-west-1"
    assert env.origin == project / "contracts" / "dev.json"
    assert env.state_dir == project / ".taly" / "dev" and not env.state_dir.exists()
    pg = env.postgres()
    assert pg.primary == environment.HostPort("db.example.com", 5432) and pg.sslmode == "require"
    assert pg.replicas == (("taly-dev-db-replica-1", environment.HostPort("replica.example.com", 5433)),)
    assert env.redis().replicas == () and env.redis().tls
    assert env.targets == {"rpo_minutes": 60, "rto_minutes": 15, "source": "the dev contract (stack config taly:backup)"}
    assert env.aws is env.aws and env.aws.target == environment.AwsTarget("eu-west-1")  # built once
    assert env.store.bucket == "taly-dev-backups" and env.store is env.store


def test_a_contract_of_another_environment_is_refused(project):
    (project / "contracts").mkdir()
    (project / "contracts" / "staging.json").write_text(json.dumps(contract("prod")))
    with pytest.raises(BadInput, match="is the contract of 'prod', not 'staging'"):
        environment.resolve("staging")


def test_resolving_imports_no_aws_sdk(project):
    (project / "contracts").mkdir()
    (project / "contracts" / "prod.json").write_text(json.dumps(contract("prod")))
    code = ("import sys; from taly_ops import environment; env = environment.resolve('prod'); env.postgres(); "
            "env.store; env.source_addresses(); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('boto3', 'botocore', 'psycopg')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"TALY_PROJECT_ROOT": str(project), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["up", "status", "down"])
def test_local_commands_state_dir_help_is_about_the_local_estate_only(command):
    """Issue 10 item 16: `local up|status|down --state-dir` talked about dev/staging/prod and $TALY_STATE_DIR."""
    result = CliRunner().invoke(app, ["local", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "state directory" in text and "TALY_LOCAL_STATE" in text
    for word in ("dev/staging/prod", "staging", "prod", "TALY_STATE_DIR", "cloud"):
        assert word not in text, (command, word)
