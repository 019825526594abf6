"""Where the project lives: the folder holding Pulumi.yaml (stacks, charts, runbooks)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import BadInput


def project_root() -> Path:
    """TALY_PROJECT_ROOT, else the nearest parent of the cwd with Pulumi.yaml, else this checkout."""
    if env := os.environ.get("TALY_PROJECT_ROOT"):
        root = Path(env)
        if not (root / "Pulumi.yaml").is_file():
            raise BadInput(f"TALY_PROJECT_ROOT={env} holds no Pulumi.yaml")
        return root
    for candidate in [Path.cwd(), *Path.cwd().parents]:
        if (candidate / "Pulumi.yaml").is_file() and (candidate / "stacks").is_dir():
            return candidate
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "Pulumi.yaml").is_file():
        return checkout
    raise BadInput(
        "cannot find the Taly project (a folder with Pulumi.yaml and stacks/)",
        hint="run taly from the repository, or set TALY_PROJECT_ROOT",
    )
