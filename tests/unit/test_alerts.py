"""The alert rules: valid for Prometheus, and each alert proven to fire on a breach and stay quiet otherwise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path("platform/taly_platform/alerts/taly.rules.yaml")
TESTS = Path("tests/alerts/taly.test.yaml")


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's 'prometheus' package (scripts/install-system-deps does)"
    return path


def test_rules_pass_promtool_check(project_root):
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], cwd=project_root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_pass(project_root):
    proc = subprocess.run([promtool(), "test", "rules", TESTS.name], cwd=project_root / TESTS.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_test(project_root):
    rules = yaml.safe_load((project_root / RULES).read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((project_root / TESTS).read_text())
    fired = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if c["exp_alerts"]}
    assert alerts == fired, f"alerts without a firing test: {sorted(alerts - fired)}"


def test_the_seeds_thresholds_are_the_ones_alerted_on(project_root):
    rules = yaml.safe_load((project_root / RULES).read_text())
    exprs = {r["alert"]: (r["expr"], r["labels"]["severity"]) for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert exprs["HighErrorRate"] == ("service:http_error_ratio:rate5m > 0.01", "warning")
    assert exprs["CriticalErrorRate"] == ("service:http_error_ratio:rate5m > 0.05", "page")
    assert exprs["HighLatencyP95"][0].endswith("> 0.5") and "0.95" in exprs["HighLatencyP95"][0]
    assert exprs["HighLatencyP99"][0].endswith("> 3") and "0.99" in exprs["HighLatencyP99"][0]
    assert exprs["DatabaseReplicationLag"][0] == "pg_replication_lag > 10"
    assert exprs["ContainerCpuHigh"][0].strip().endswith("> 0.8")
    assert exprs["ContainerMemoryHigh"][0].strip().endswith("> 0.9")
