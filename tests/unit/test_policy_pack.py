"""The policy pack as a whole: how its modules fit, the seeds' numbers it holds against careless prod changes
(the real program on an edited stack file), and the pages that describe it."""

from __future__ import annotations

from taly_ops.policy.pack import all_rules


def test_rules_modules_import_only_the_model_and_resources_and_nothing_imports_back():
    """No registration by import side effect: rules modules list their RULES, the pack collects them."""
    import ast
    from pathlib import Path

    import taly_ops.policy as package

    def siblings(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
        return found

    folder = Path(package.__file__).parent
    imports = {p.stem: siblings(p) for p in folder.glob("*.py") if p.stem != "__init__"}
    assert imports["model"] == set() and imports["resources"] == {"model"}
    for name in imports:
        if name.startswith("rules_"):
            assert imports[name] <= {"model", "resources"}, name
            assert name in imports["pack"]
    assert "pack" not in imports["model"] | {m for n, i in imports.items() if n.startswith("rules_") for m in i}


# Careless changes to prod's stack file, each breaking one of the seeds' numbers, all in one file: the real
# program runs on it (offline plan) and exactly the rules that guard those numbers fail.
CARELESS_PROD_CHANGES = [
    ("    readReplicas: 2\n", "    readReplicas: 0\n", "rds-prod-read-replica"),
    ("    crossRegionBackupReplication: true\n", "    crossRegionBackupReplication: false\n", "rds-prod-cross-region-backups"),
    ("    snapshotRetentionDays: 14\n", "    snapshotRetentionDays: 14\n    hourlySnapshots: false\n", "redis-hourly-snapshots"),
    ("    retentionDays: 35\n", "    retentionDays: 14\n", "backup-plan-retention"),
    ("    crossRegionCopy: true\n", "    crossRegionCopy: false\n", "backup-prod-cross-region-copy"),
    ("    backupsCrossRegionReplication: true\n", "    backupsCrossRegionReplication: false\n", "s3-prod-backups-replicated"),
    ("    natGateways: onePerAz\n", "    natGateways: single\n", "vpc-prod-multi-az"),
    ("        minSize: 3\n", "        minSize: 1\n", "eks-prod-nodes-multi-az"),
    ("      maxReplicas: 20\n", "      maxReplicas: 10\n      cpuTargetPercent: 90\n", "k8s-prod-hpa-max"),
    ("  taly:protection:\n", "  taly:edge:\n    managedRuleGroups: [AWSManagedRulesSQLiRuleSet]\n  taly:protection:\n",
     "waf-managed-rules"),
]


def test_careless_prod_changes_fail_the_rules_that_hold_the_seeds_numbers(tmp_path, project_root):
    import shutil

    from taly_ops.operations.policy import check

    shutil.copy(project_root / "Pulumi.yaml", tmp_path)
    shutil.copytree(project_root / "stacks", tmp_path / "stacks")
    prod = tmp_path / "stacks" / "Pulumi.prod.yaml"
    text = prod.read_text()
    for old, new, _ in CARELESS_PROD_CHANGES:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    prod.write_text(text)
    (report,) = check(tmp_path, ["prod"])
    failed = {r.id for r in report.results if r.status == "fail"}
    assert not report.passed
    # cpuTargetPercent: 90 fails k8s-hpa-targets too (the seeds' 70 %).
    assert failed == {rule for _, _, rule in CARELESS_PROD_CHANGES} | {"k8s-hpa-targets"}


def test_the_seeds_page_names_every_rule_and_only_rules_that_exist(project_root):
    import re

    page = (project_root / "docs" / "policy-seeds.md").read_text()
    named = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", page))
    ids = {r.id for r in all_rules()}
    assert ids - named == set(), "rules missing from docs/policy-seeds.md"
    assert named - ids == set(), "docs/policy-seeds.md names rules that do not exist"


def test_readme_states_the_rule_count(project_root):
    readme = (project_root / "README.md").read_text()
    assert f"# {len(all_rules())} rules, mandatory or advisory" in readme
