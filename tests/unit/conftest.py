from __future__ import annotations

from pathlib import Path

import pytest

from taly_platform.config import ENVIRONMENTS


@pytest.fixture(scope="session")
def plans(project_root: Path):
    """The offline plan of every shipped stack: the real program run under recording mocks."""
    from taly_ops.offline.plan import build_plan

    return {env: build_plan(project_root, env) for env in ENVIRONMENTS}
