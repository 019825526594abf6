"""Plans of several environments at once, in the worker server's processes: the same plans, the same errors."""

from __future__ import annotations

import gc
import pickle

import pytest

from taly_ops.adapters.helm import HelmFailed
from taly_ops.offline.plan import RemoteTraceback, Workers
from taly_ops.operations.plan import load_config


def test_workers_plan_each_environment_as_the_cli_process_would(project_root, plans):
    configs = [load_config(project_root, env) for env in ("prod", "dev")]
    planned = Workers().run(configs)
    assert [p.environment for p in planned] == ["prod", "dev"]  # in the order asked
    for plan in planned:
        assert plan.to_json() == plans[plan.environment].to_json()
        assert plan.config == plans[plan.environment].config


def test_an_error_in_one_worker_is_raised_as_itself_naming_where(project_root):
    dev = load_config(project_root, "dev")
    broken = dev.model_copy(update={"services": None})  # no stack file can say this: it fails in the program
    with pytest.raises(Exception, match="taly:services") as raised:
        Workers().run([dev, broken])
    assert type(raised.value).__name__ == "RunError"
    assert isinstance(raised.value.__cause__, RemoteTraceback)
    assert "read_stack_config" in str(raised.value.__cause__)


def test_a_chart_error_survives_the_trip_from_a_worker():
    error = pickle.loads(pickle.dumps(HelmFailed("helm template taly-dev-auth failed: x", "x", hint="fix the values")))
    assert (type(error), error.message, error.stderr, error.hint) == (
        HelmFailed, "helm template taly-dev-auth failed: x", "x", "fix the values")


def test_a_server_never_asked_stops_when_dropped():
    """A caller that fails before asking (a wrong stack file) leaves nothing running."""
    workers = Workers()
    server = workers.server
    del workers
    gc.collect()
    assert server.poll() is not None
