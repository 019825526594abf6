"""`taly plan` through the real Typer app: output contracts, exit codes, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taly_ops.app import app

runner = CliRunner()


def invoke(*args: str, root: Path | None = None):
    env = {"TALY_PROJECT_ROOT": str(root)} if root else {}
    return runner.invoke(app, list(args), env=env)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("taly ")


def test_unknown_environment_exits_2_naming_the_known_ones():
    result = invoke("plan", "--env", "qa")
    assert result.exit_code == 2
    assert "unknown environment 'qa'" in str(result.exception) or "unknown environment 'qa'" in result.output


def test_plan_json_for_one_environment(project_root):
    result = invoke("plan", "--env", "dev", "--output", "json", root=project_root)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["environment"] == "dev"
    resources = data["resources"]
    assert {"type", "name", "parent", "inputs"} <= set(resources[0])
    types = {r["type"] for r in resources}
    assert "aws:rds/instance:Instance" in types and "aws:eks/cluster:Cluster" in types
    parents = {r["name"] for r in resources}
    assert all(r["parent"] is None or r["parent"] in parents for r in resources)


def test_plan_table_groups_by_component(project_root):
    result = invoke("plan", "--env", "prod", root=project_root)
    assert result.exit_code == 0, result.output
    for component in ("network", "database", "cache", "broker", "storage", "service-roles", "backup", "edge"):
        assert component in result.output
    assert "aws:rds/instance:Instance" in result.output


def test_compare_shows_differing_settings_side_by_side(project_root):
    result = invoke("plan", "--compare", "staging", "prod", "--output", "json", root=project_root)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    settings = {row["setting"]: row for row in data["settings"]}
    assert settings["database.readReplicas"]["staging"] == 0 and settings["database.readReplicas"]["prod"] == 2
    assert "network.cidr" in settings and "region" not in settings
    counts = {row["type"]: row for row in data["resources"]}
    assert counts["aws:rds/instance:Instance"]["prod"] == 3


def _broken_root(tmp_path: Path, project_root: Path, old: str, new: str) -> Path:
    shutil.copy(project_root / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(project_root / "stacks", tmp_path / "stacks")
    path = tmp_path / "stacks" / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace(old, new, 1))
    return tmp_path


@pytest.mark.parametrize("old,new,expect", [
    ("multiAz: false\n    readReplicas: 0", "multiAz: maybe\n    readReplicas: 0", "taly:database.multiAz"),
    ("    cidr: 10.10.0.0/16", "    cidr: [10.10.0.0/16", "broken YAML"),
    ("    natGateways: single", "    natGateways: single\n    natGatewayz: 2", "taly:network.natGatewayz"),
])
def test_bad_stack_file_exits_2_without_traceback(tmp_path, project_root, old, new, expect):
    root = _broken_root(tmp_path, project_root, old, new)
    proc = subprocess.run(
        [sys.executable, "-m", "taly_ops", "plan", "--env", "dev"],
        capture_output=True, text=True, env={**os.environ, "TALY_PROJECT_ROOT": str(root)}, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "stacks/Pulumi.dev.yaml:" in proc.stderr and expect in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_output_choice_exits_2():
    result = invoke("plan", "--env", "dev", "--output", "xml")
    assert result.exit_code == 2 and "xml" in result.output


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from taly_ops.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('boto3', 'kubernetes', 'pulumi', 'pulumi_aws', 'psycopg') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
