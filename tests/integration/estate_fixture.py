"""The local estate for integration tests, started through the same launcher as `taly local up`.

Used through conftest.py's fixtures (local_estate, estate_factory, wait_for_scratch); modules that still
import it directly are being switched to those fixtures.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from taly_ops.errors import BadInput
from taly_ops.local import estate
from taly_ops.local.state import State


def start_local_estate(request: pytest.FixtureRequest, prefix: str, size: int,
                       before_down: Callable[[Path], None] | None = None) -> State:
    """Bring an estate up in a fresh state dir; the finalizer takes it down whatever happened.

    The state dir is under /tmp and world-searchable: as root, PostgreSQL runs as `postgres`,
    which cannot enter pytest's own tmp_path (/tmp/pytest-of-root is mode 700). Missing
    prerequisites fail the tests: they are not skipped into a green run.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    state_dir = root / "state"

    def teardown() -> None:
        try:
            if before_down is not None:
                before_down(state_dir)
        except Exception as exc:  # noqa: BLE001 - the estate goes down regardless
            print(f"cleanup before down failed: {exc}", file=sys.stderr)
        try:
            estate.down(state_dir)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(teardown)
    state_dir.mkdir()
    try:
        estate.preflight(state_dir)
    except BadInput as exc:
        pytest.fail(f"local estate prerequisites missing: {exc.message} ({exc.hint})")
    result = estate.up(state_dir, size=size, progress=lambda line: print(line, file=sys.stderr))
    assert not result.already_running, "a fresh state dir cannot hold a running estate"
    return result.state


def wait_for_scratch(proc, registry: Callable[[], dict], timeout: float) -> dict:
    """The registry entry of proc's scratch instance, once it is spawned and accepting connections.

    Fails if proc exits first or the instance is not up within timeout seconds.
    """
    import time

    from taly_ops.local import supervisor

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate() if proc.stdout else proc.returncode
        assert time.monotonic() < deadline, "the scratch instance never came up"
        mine = [e for e in registry().values() if e.get("owner_pid") == proc.pid]
        if mine and mine[0].get("pid") and supervisor.port_open(mine[0]["port"]):
            return mine[0]
        time.sleep(0.05)


def wait_settled(state: State, timeout: float = 30) -> None:
    """Until Prometheus has scraped every target since it came up (RabbitMQ is the last to answer)."""
    import json
    import urllib.request

    from taly_ops.local import supervisor

    url = state.endpoints["prometheus"]["url"]

    def settled() -> bool:
        with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=2) as resp:
            series = json.load(resp)["data"]["result"]
        return len(series) >= 4 and all(s["value"][1] == "1" for s in series)

    supervisor.wait_until(settled, component="prometheus", what="every scrape target up", timeout=timeout)
