"""The plan's fork server preloads every module the program uses, so no worker imports one again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    import taly_ops.offline.preload
    from taly_ops.offline.plan import build_plan
    from taly_ops.project import project_root
    before = set(sys.modules)
    for env in ("dev", "staging", "prod"):
        build_plan(project_root(), env)
    late = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_kubernetes",
                                                                              "pulumi_random", "taly_platform"))
    print("LATE", late)
""")


def test_the_program_imports_nothing_the_preload_did_not(project_root):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TALY_PROJECT_ROOT": str(project_root)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "LATE []" in proc.stdout, (proc.stdout + "\nadd these to offline/preload.py (AWS_MODULES or "
                                      "KUBERNETES_MODULES)")
