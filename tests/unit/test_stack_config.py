"""Stack files validate before any resource: bad values name the file, key, line and what is allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from taly_platform.config import ENVIRONMENTS
from taly_platform.stackfile import StackConfigError, load_stack


@pytest.fixture
def project_copy(tmp_path: Path, project_root: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((project_root / "Pulumi.yaml").read_text())
    shutil.copytree(project_root / "stacks", tmp_path / "stacks")
    return tmp_path


def _edit(root: Path, env: str, old: str, new: str) -> None:
    path = root / "stacks" / f"Pulumi.{env}.yaml"
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _line(root: Path, env: str, needle: str) -> int:
    lines = (root / "stacks" / f"Pulumi.{env}.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_shipped_stack_files_are_valid(project_root: Path, env: str) -> None:
    config = load_stack(project_root, env)
    assert config.environment == env
    assert config.database.backup_retention_days >= 7


def test_environment_differences_live_in_the_stack_files(project_root: Path) -> None:
    dev, staging, prod = (load_stack(project_root, e) for e in ENVIRONMENTS)
    assert len(dev.network.availability_zones) == 2
    assert len(prod.network.availability_zones) == 3
    assert (dev.database.multi_az, staging.database.multi_az, prod.database.multi_az) == (False, True, True)
    assert dev.database.read_replicas == 0 and prod.database.read_replicas >= 1
    assert dev.broker.deployment_mode == "SINGLE_INSTANCE" and prod.broker.deployment_mode == "CLUSTER_MULTI_AZ"
    assert prod.protection.protect_stateful and not dev.protection.protect_stateful
    assert prod.services.sizing.min_replicas == 3 and prod.services.sizing.max_replicas == 20


def test_wrong_type_names_file_key_line_and_value(project_copy: Path) -> None:
    _edit(project_copy, "prod", "readReplicas: 2", "readReplicas: two")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "prod")
    e = err.value
    assert e.file == "stacks/Pulumi.prod.yaml"
    assert e.key == "taly:database.readReplicas"
    assert e.line == _line(project_copy, "prod", "readReplicas")
    assert "two" in str(e) and "integer" in str(e)


def test_out_of_range_value_says_what_is_allowed(project_copy: Path) -> None:
    _edit(project_copy, "dev", "backupRetentionDays: 7", "backupRetentionDays: 3")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "dev")
    assert err.value.key == "taly:database.backupRetentionDays"
    assert "greater than or equal to 7" in str(err.value)
    assert err.value.line == _line(project_copy, "dev", "backupRetentionDays: 3")


def test_unknown_key_is_refused(project_copy: Path) -> None:
    _edit(project_copy, "staging", "    multiAz: true\n    readReplicas", "    multiAz: true\n    replicaz: 3\n    readReplicas")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "staging")
    assert err.value.key == "taly:database.replicaz"
    assert "not a known setting" in str(err.value)
    assert err.value.line == _line(project_copy, "staging", "replicaz")


def test_unknown_top_level_key_lists_the_known_ones(project_copy: Path) -> None:
    _edit(project_copy, "dev", "  taly:network:", "  taly:netwrok:")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "dev")
    assert err.value.key == "taly:netwrok"
    assert "taly:network" in str(err.value)


def test_broken_yaml_names_the_line(project_copy: Path) -> None:
    _edit(project_copy, "dev", "    cidr: 10.10.0.0/16", "    cidr: [10.10.0.0/16")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "dev")
    assert "broken YAML" in str(err.value)
    assert err.value.line is not None and err.value.line >= _line(project_copy, "dev", "cidr: [")


def test_cross_field_rules(project_copy: Path) -> None:
    _edit(project_copy, "dev", "availabilityZones: [eu-west-1a, eu-west-1b]", "availabilityZones: [eu-west-1a, us-east-1b]")
    with pytest.raises(StackConfigError, match="not in region"):
        load_stack(project_copy, "dev")


def test_public_endpoint_needs_an_allow_list(project_copy: Path) -> None:
    _edit(project_copy, "dev", '    version: "1.33"', '    version: "1.33"\n    endpointPublicAccess: true')
    with pytest.raises(StackConfigError, match="allow-list"):
        load_stack(project_copy, "dev")


def test_unknown_environment(project_root: Path) -> None:
    with pytest.raises(StackConfigError, match="unknown environment 'qa'"):
        load_stack(project_root, "qa")


@pytest.mark.parametrize("cidrs, problem", [
    ("[0.0.0.0/0]", "must be private networks"),
    ("[52.16.0.0/16]", "must be private networks"),
    ("[10.10.96.1/24]", "not a CIDR block"),
    ("[10.10.96.0/24, 10.10.96.0/24]", "distinct"),
])
def test_drill_client_cidrs_are_private_cidr_blocks(project_copy: Path, cidrs: str, problem: str) -> None:
    _edit(project_copy, "dev", "backupRetentionDays: 7", f"backupRetentionDays: 7\n    drillClientCidrs: {cidrs}")
    with pytest.raises(StackConfigError, match=problem) as err:
        load_stack(project_copy, "dev")
    assert err.value.key == "taly:database.drillClientCidrs"


def test_drill_client_cidrs_default_to_none(project_root: Path) -> None:
    assert all(load_stack(project_root, env).database.drill_client_cidrs == [] for env in ENVIRONMENTS)


@pytest.mark.parametrize("old, new, key, problem", [
    ("cpuRequest: 250m", "cpuRequest: 1500m", "taly:services.sizing", "cpuRequest 1500m must be <= cpuLimit 1"),
    ("memoryRequest: 256Mi", "memoryRequest: 2Gi", "taly:services.sizing", "memoryRequest 2Gi must be <= memoryLimit 1Gi"),
    ("memoryLimit: 1Gi", "memoryLimit: 1G", "taly:services.sizing.memoryLimit", "should match pattern"),
    ("cpuRequest: 250m", "cpuRequest: 0.25cores", "taly:services.sizing.cpuRequest", "should match pattern"),
])
def test_sizing_quantities_and_requests_within_limits(project_copy: Path, old: str, new: str, key: str, problem: str) -> None:
    _edit(project_copy, "prod", old, new)
    with pytest.raises(StackConfigError, match=problem) as err:
        load_stack(project_copy, "prod")
    assert err.value.key == key


# --- stack files that are not YAML text, and values too large to quote -------------------------------

def _bomb(levels: int) -> str:
    """A YAML alias bomb under taly:owner: each level is a list of nine aliases to the one before."""
    lines = ["  taly:owner:", '    - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"    - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_binary_stack_file_names_the_file_and_says_binary(project_copy: Path) -> None:
    (project_copy / "stacks" / "Pulumi.dev.yaml").write_bytes(b"config:\n  \x00\x01\xff\xfe binary\n")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "dev")
    assert str(err.value) == "stacks/Pulumi.dev.yaml: is a binary file (it holds NUL bytes), not YAML text"


def test_non_utf8_stack_file_names_the_line(project_copy: Path) -> None:
    (project_copy / "stacks" / "Pulumi.dev.yaml").write_bytes(b"config:\n  taly:owner: caf\xe9\n")
    with pytest.raises(StackConfigError, match=r"^stacks/Pulumi.dev.yaml:2: is not UTF-8 text \(byte 0xe9"):
        load_stack(project_copy, "dev")


def test_stack_file_that_is_a_directory(project_copy: Path) -> None:
    path = project_copy / "stacks" / "Pulumi.dev.yaml"
    path.unlink()
    path.mkdir()
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "dev")
    assert str(err.value) == "stacks/Pulumi.dev.yaml: is a directory, not a YAML file"


def test_alias_bomb_under_owner_is_refused_in_one_short_line(project_copy: Path) -> None:
    path = project_copy / "stacks" / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("config:\n", "config:\n" + _bomb(6), 1))
    assert len(path.read_text()) < 3000
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "prod")
    message = str(err.value)
    assert "alias expansion bomb" in message and message.startswith("stacks/Pulumi.prod.yaml:")
    assert len(message) < 300


def test_a_bad_value_is_quoted_shortened(project_copy: Path) -> None:
    # Not a bomb: a plain list of 5,000 items where a string belongs.
    _edit(project_copy, "dev", "config:\n", "config:\n  taly:owner: [" + ", ".join(["platform-team"] * 5000) + "]\n")
    with pytest.raises(StackConfigError) as err:
        load_stack(project_copy, "dev")
    message = str(err.value)
    assert err.value.key == "taly:owner" and "valid string" in message
    assert '["platform-team", "platform-team"' in message and "characters)" in message
    assert len(message) < 250


@pytest.mark.parametrize("damage", ["binary", "directory", "bomb"])
def test_cli_exits_2_with_one_line_on_a_damaged_stack_file(project_copy: Path, damage: str) -> None:
    from typer.testing import CliRunner

    from taly_ops.app import app

    path = project_copy / "stacks" / "Pulumi.prod.yaml"
    if damage == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00")
    elif damage == "directory":
        path.unlink()
        path.mkdir()
    else:
        path.write_text(path.read_text().replace("config:\n", "config:\n" + _bomb(6), 1))
    for command in (["plan", "--env", "prod"], ["policy", "check", "--env", "prod"]):
        result = CliRunner().invoke(app, command, env={"TALY_PROJECT_ROOT": str(project_copy), "NO_COLOR": "1"})
        assert result.exit_code == 2, result.output
        (line,) = [x for x in result.stderr.splitlines() if not x.startswith("planning ")]
        assert line.startswith("error: stacks/Pulumi.prod.yaml") and len(line) < 300
        assert "internal error" not in result.output


# --- the reference page, generated from the model ------------------------------------------------------

def test_stack_config_page_is_generated_from_the_model(project_root: Path) -> None:
    from taly_platform.stackdoc import generate

    page = project_root / "docs" / "stack-config.md"
    assert page.read_text() == generate(), "docs/stack-config.md is stale: run python -m taly_platform.stackdoc --write"


def _models(model, seen=None):
    import typing

    from pydantic import BaseModel

    seen = seen if seen is not None else set()
    if model in seen:
        return seen
    seen.add(model)
    for field in model.model_fields.values():
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                _models(arg, seen)
    return seen


def test_every_setting_has_a_description() -> None:
    from taly_platform.config import StackConfig

    undescribed = [f"{m.__name__}.{name}" for m in _models(StackConfig)
                   for name, field in m.model_fields.items() if not (field.description or "").strip()]
    assert undescribed == []


def _keys(prefix: str, value) -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _keys(f"{prefix}.{key}", v)] or [prefix]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [k for v in value for k in _keys(f"{prefix}[]", v)]
    return [prefix]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_key_of_the_shipped_stack_files_is_on_the_page(project_root: Path, env: str) -> None:
    import yaml

    page = (project_root / "docs" / "stack-config.md").read_text()
    config = yaml.safe_load((project_root / "stacks" / f"Pulumi.{env}.yaml").read_text())["config"]
    keys = [k.replace("[].", "[].") for top, value in config.items() for k in _keys(top, value)]
    missing = []
    for key in keys:
        # a node group's keys are documented once, under taly:cluster.nodeGroups[]
        documented = key.replace("nodeGroups[].", "nodeGroups.") if "nodeGroups[]" in key else key
        if f"`{key}`" not in page and f"`{documented}`" not in page:
            missing.append(key)
    assert missing == []


# --- the seeds' numbers, held by the model ---------------------------------------------------------------

@pytest.mark.parametrize("section, setting, problem", [
    ("taly:edge", "rateLimitPerMinute: 500", "less than or equal to 100"),       # seeds: 100 requests a minute per user
    ("taly:backup", "rpoMinutes: 120", "less than or equal to 60"),               # seeds: RPO < 1 h
    ("taly:backup", "rtoMinutes: 60", "less than or equal to 15"),                # seeds: RTO < 15 min
    ("taly:backup", 'schedule: "cron(0 3 ? * MON *)"', "at least daily"),         # seeds: daily automated backups
    ("taly:backup", "retentionDays: 3", "greater than or equal to 7"),            # seeds: 7-day retention at least
    ("taly:backup", "copyRetentionDays: 1", "greater than or equal to 7"),
])
def _set(root: Path, env: str, section: str, setting: str) -> None:
    """Set `setting` ("key: value") under `section` of a stack file, replacing the key when it is there."""
    import re

    path = root / "stacks" / f"Pulumi.{env}.yaml"
    text = path.read_text()
    key = setting.split(":")[0]
    block = re.search(rf"^  {re.escape(section)}:\n((?:    .*\n)*)", text, re.M)
    if block is None:
        text += f"  {section}:\n    {setting}\n"
    elif re.search(rf"^    {key}:.*$", block.group(1), re.M):
        body = re.sub(rf"^    {key}:.*$", f"    {setting}", block.group(1), count=1, flags=re.M)
        text = text[:block.start(1)] + body + text[block.end(1):]
    else:
        text = text[:block.start(1)] + f"    {setting}\n" + text[block.start(1):]
    path.write_text(text)


@pytest.mark.parametrize("section, setting, problem", [
    ("taly:edge", "rateLimitPerMinute: 500", "less than or equal to 100"),       # seeds: 100 requests a minute per user
    ("taly:backup", "rpoMinutes: 120", "less than or equal to 60"),               # seeds: RPO < 1 h
    ("taly:backup", "rtoMinutes: 60", "less than or equal to 15"),                # seeds: RTO < 15 min
    ("taly:backup", 'schedule: "cron(0 3 ? * MON *)"', "at least daily"),         # seeds: daily automated backups
    ("taly:backup", "retentionDays: 3", "greater than or equal to 7"),            # seeds: 7-day retention at least
    ("taly:backup", "copyRetentionDays: 1", "greater than or equal to 7"),
])
def test_seed_numbers_are_limits_of_the_stack_config(project_copy: Path, section: str, setting: str, problem: str) -> None:
    _set(project_copy, "staging", section, setting)
    with pytest.raises(StackConfigError, match=problem) as err:
        load_stack(project_copy, "staging")
    assert err.value.key == f"{section}.{setting.split(':')[0]}"
    assert err.value.line == _line(project_copy, "staging", setting.split(":")[0] + ":")


@pytest.mark.parametrize("section, setting", [
    ("taly:edge", "rateLimitPerMinute: 100"), ("taly:edge", "rateLimitPerMinute: 50"),
    ("taly:backup", "rpoMinutes: 60"), ("taly:backup", "rtoMinutes: 15"),
    ("taly:backup", 'schedule: "cron(0 */6 * * ? *)"'), ("taly:backup", "retentionDays: 7"),
])
def test_seed_numbers_at_or_inside_the_limit_pass(project_copy: Path, section: str, setting: str) -> None:
    _set(project_copy, "staging", section, setting)
    load_stack(project_copy, "staging")


def test_a_key_given_twice_is_refused_with_its_line(project_copy: Path) -> None:
    _edit(project_copy, "prod", "    readReplicas: 2\n", "    readReplicas: 2\n    readReplicas: 0\n")
    with pytest.raises(StackConfigError, match="'readReplicas' is given twice") as err:
        load_stack(project_copy, "prod")
    assert err.value.line == _line(project_copy, "prod", "readReplicas: 0")
