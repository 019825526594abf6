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
    """`taly --help`, and the help of every command group, in one process: nothing heavy loaded by any of them."""
    code = (
        "import sys\n"
        "import typer.main\n"
        "from taly_ops.app import app\n"
        "groups = sorted(typer.main.get_command(app).commands)\n"
        "assert {'backup', 'drill', 'policy'} <= set(groups), groups\n"
        "for args in ([], *([g] for g in groups)):\n"
        "    try:\n        app([*args, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('boto3', 'botocore', 'kubernetes', 'pulumi', 'pulumi_aws', 'psycopg') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("args,expect", [
    (("--compare", "staging", "staging"), "--compare takes two different environments"),
    (("--env", "dev", "--compare", "staging", "prod"), "--env and --compare"),
    (("--env", "all", "--compare", "staging", "prod"), "--env and --compare"),
    (("--compare", "staging", "qa"), "unknown environment 'qa'"),
])
def test_bad_compare_exits_2_at_once_with_one_line(args, expect):
    result = invoke("plan", *args)
    assert result.exit_code == 2, result.output
    assert expect in result.stderr
    assert "planning" not in result.output  # nothing ran
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_compare_table_renders_values_for_people(project_root):
    result = invoke("plan", "--compare", "dev", "prod", root=project_root)
    assert result.exit_code == 0, result.output
    assert "database.multiAz" in result.stdout
    assert "False" not in result.stdout and "True" not in result.stdout
    assert "{'" not in result.stdout and "[{" not in result.stdout


def test_plan_json_is_deterministic_with_whole_numbers_as_integers(project_root):
    first = invoke("plan", "--env", "staging", "--output", "json", root=project_root)
    second = invoke("plan", "--env", "staging", "--output", "json", root=project_root)
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert first.stdout == second.stdout
    resources = json.loads(first.stdout)["resources"]
    db = next(r for r in resources if r["type"] == "aws:rds/instance:Instance")
    assert isinstance(db["inputs"]["allocatedStorage"], int)
    key = next(r for r in resources if r["type"] == "aws:kms/key:Key")
    assert key["inputs"]["deletionWindowInDays"] == 30 and isinstance(key["inputs"]["deletionWindowInDays"], int)
    assert ".0," not in first.stdout and ".0\n" not in first.stdout


def test_help_shows_no_bool_metavar_and_the_secret_marker():
    result = invoke("plan", "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert '"[secret]"' in result.output
    root = invoke("--help")
    assert "<bool>" not in root.output and "(soon)" not in root.output


def test_local_state_dir_help_is_about_the_local_estate():
    for sub in ("up", "status", "down"):
        result = invoke("local", sub, "--help")
        assert result.exit_code == 0
        assert "Secrets Manager" not in result.output and "dev/staging/prod" not in result.output
        assert "TALY_LOCAL_STATE" in result.output


def _taly_exe() -> str:
    return shutil.which("taly", path=str(Path(sys.executable).parent)) or "taly"


def test_bash_completion_script_is_shown_and_completes():
    script = subprocess.run([_taly_exe(), "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr
    assert "_TALY_COMPLETE=complete_bash" in script.stdout and "complete -o default -F _taly_completion taly" in script.stdout
    # What bash runs on <TAB>: the script calls taly with these variables set.
    words = subprocess.run([_taly_exe()], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "_TALY_COMPLETE": "complete_bash", "COMP_WORDS": "taly drill re",
                                "COMP_CWORD": "2"})
    assert set(words.stdout.split()) == {"restore", "reap"}, words.stdout + words.stderr


def test_documented_redirects_write_into_directories_a_fresh_clone_has(project_root):
    """`pulumi stack output ... > contracts/dev.json` must work right after `git clone`."""
    import re

    tracked = subprocess.run(["git", "ls-files"], cwd=project_root, capture_output=True, text=True,
                             check=True).stdout.split()
    tracked_dirs = {str(Path(f).parent) for f in tracked}
    targets = [m for doc in ("README.md", "docs/operations.md")
               for m in re.findall(r"^[^#\n]*?[^>]> ([\w./-]+)", (project_root / doc).read_text(), re.M)]
    assert "contracts/dev.json" in targets
    for target in targets:
        parent = str(Path(target).parent)
        assert parent == "." or parent in tracked_dirs, f"{target}: {parent}/ is not in the repository"
