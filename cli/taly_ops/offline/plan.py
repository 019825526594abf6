"""Build the offline plan of one environment: validate its stack file, run the program under mocks."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from taly_platform.config import STACK_KEYS, StackConfig
from taly_platform.stackfile import load_stack


@dataclass
class PlannedResource:
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    urn: str
    parent_urn: str | None
    custom: bool
    protect: bool
    ignore_changes: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    environment: str
    config: StackConfig
    resources: list[PlannedResource]
    outputs: dict[str, Any]

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str, type_token: str | None = None) -> PlannedResource:
        """The resource with this name (and type, where names repeat across types)."""
        found = [r for r in self.resources if r.name == name and (type_token is None or r.type == type_token)]
        if len(found) != 1:
            raise KeyError(f"{name} ({type_token or 'any type'}): {len(found)} matches")
        return found[0]

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "resources": [r.to_json() for r in self.resources]}


def stack_config_values(config: StackConfig) -> dict[str, str]:
    """The stack's config as Pulumi hands it to a program: `namespace:key` -> JSON text."""
    data = config.model_dump(by_alias=True, mode="json")
    values = {}
    for field, key in STACK_KEYS.items():
        value = data[StackConfig.model_fields[field].alias or field]
        values[key] = value if isinstance(value, str) else json.dumps(value)
    return values


def build_plan(project_root: Path, env: str) -> Plan:
    config = load_stack(project_root, env)
    return run_program(config)


def run_program(config: StackConfig) -> Plan:
    """Run `taly_platform.program.main` under recording mocks and collect what it registers."""
    from . import preload  # noqa: F401 - what the program uses, loaded the fast way (a no-op in a worker)

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import pulumi
    from pulumi.runtime import settings as rt_settings
    from pulumi.runtime.mocks import set_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from taly_platform import program

    from .mocks import RecordingMocks, RecordingMonitor

    mocks = RecordingMocks(region=config.region)
    monitor = RecordingMonitor(mocks)
    rt_settings.SETTINGS.rpc_manager.clear()
    rt_settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config(stack_config_values(config))
    set_mocks(mocks, project="taly", stack=config.environment, preview=False, monitor=monitor)

    exported: dict[str, Any] = {}

    def run() -> None:
        outputs = program.main()
        for key, value in outputs.items():
            pulumi.Output.from_input(value).apply(lambda v, k=key: exported.__setitem__(k, v))

    _sync_await(run_pulumi_func(run))
    # Registrations arrive in the order their inputs resolve, which varies run to run: sort by URN
    # (unique, and it groups children under their component's type), so plans diff cleanly.
    resources = [
        PlannedResource(r.type, r.name, r.parent, r.inputs, r.urn, r.parent_urn, r.custom, r.protect, r.ignore_changes)
        for r in sorted(monitor.registrations, key=lambda r: r.urn)
    ]
    return Plan(config.environment, config, resources, exported)


class Workers:
    """Run several environments' programs at once, one process each, forked from a server that imported Pulumi once.

    Each run is CPU-bound Python inside Pulumi's event loop, so they go to processes. They are
    forked from a fork server that imported `offline/preload.py` (what every run uses), not from
    this process: a process that has run Pulumi (threads, gRPC) can deadlock in a fork. Creating
    `Workers` starts that server, so its imports (2 s of CPU) overlap whatever the caller does next.
    """

    def __init__(self) -> None:
        import multiprocessing
        from multiprocessing import forkserver

        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["taly_ops.offline.preload", "taly_ops.offline.plan"])
        forkserver.ensure_running()

    def run(self, configs: list[StackConfig]) -> list[Plan]:
        from concurrent.futures import ProcessPoolExecutor

        from .mocks import HELM_SLOTS

        # One task per worker: each exits, and frees its memory, as soon as its plan is sent back.
        with ProcessPoolExecutor(max_workers=len(configs), mp_context=self.context, max_tasks_per_child=1,
                                 initializer=_start_worker,
                                 initargs=(self.context.BoundedSemaphore(HELM_SLOTS),)) as pool:
            return list(pool.map(run_program, configs))


def _start_worker(helm_slots: Any) -> None:
    """A worker shares the plan's helm slots, and collects garbage less often than Python's default.

    A run makes a million short-lived objects and little cyclic garbage: collecting the youngest
    generation every 20,000 allocations instead of 700 saves 7 % of a run for 1 MB.
    """
    import gc

    from .mocks import share_helm_slots

    share_helm_slots(helm_slots)
    gc.set_threshold(20_000, 50, 1000)
