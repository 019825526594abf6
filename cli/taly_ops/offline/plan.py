"""Build the offline plan of an environment: validate its stack file, run the program under mocks (several at once: `Workers`)."""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import warnings
from dataclasses import dataclass
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
        """Its fields, in order (not `asdict`, whose deep copy was most of rendering a plan: `inputs` is never changed)."""
        return dict(vars(self))


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

    from .mocks import RecordingMocks, RecordingMonitor, without_source_positions

    without_source_positions()
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


FRAME = struct.Struct("!Q")  # a worker's frame: the length of the pickled (index, plan, error, traceback) that follows
SERVER = "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); from taly_ops.offline.workers import serve; serve()"


class Workers:
    """Run several environments' programs at once, one process each, forked from a server that imported Pulumi once.

    Each run is CPU-bound Python inside Pulumi's event loop, so they go to processes. They are
    forked from a server (`offline/workers.py`) that imported `offline/preload.py` (what every run
    uses), not from this process: a process that has run Pulumi (threads, gRPC) can deadlock in a
    fork. Creating `Workers` starts that server, so its imports (1.1 s of CPU) overlap whatever the
    caller does next. The server and its workers are a process group of their own, stopped whole
    when the caller stops early (an error, Ctrl-C), never asks, or dies (the server's stdin closes).
    """

    def __init__(self) -> None:
        import subprocess
        import weakref

        self.server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       process_group=0)
        self.server.stdin.write(pickle.dumps(sys.path))
        self.server.stdin.flush()
        self._stopper = weakref.finalize(self, _stop, self.server)

    def run(self, configs: list[StackConfig]) -> list[Plan]:
        try:
            try:
                pickle.dump(configs, self.server.stdin)
                self.server.stdin.flush()
            except BrokenPipeError:
                raise RuntimeError(f"the plan's worker server stopped before planning (exit code "
                                   f"{self.server.wait()}); its error is above") from None
            outcomes = sorted((self._receive() for _ in configs), key=lambda outcome: outcome[0])
        except BaseException:
            self._stopper()
            raise
        self.server.wait()  # it exits once its workers have
        self._stopper.detach()
        _close(self.server)
        for _, _, error, remote in outcomes:
            if error is not None:
                raise error from RemoteTraceback(remote)
        return [plan for _, plan, _, _ in outcomes]

    def _receive(self) -> tuple[int, Plan | None, BaseException | None, str | None]:
        header = self.server.stdout.read(FRAME.size)
        payload = self.server.stdout.read(FRAME.unpack(header)[0]) if len(header) == FRAME.size else b""
        if not payload:
            raise RuntimeError(f"a plan worker ended without sending its plan (the server's exit code: "
                               f"{self.server.poll()}); its error is above")
        return pickle.loads(payload)


class RemoteTraceback(Exception):
    """Where a worker's error was raised: its traceback, as text (shown with TALY_DEBUG=1)."""

    def __str__(self) -> str:
        return self.args[0]


def _stop(server: Any) -> None:
    """Stop the server, its workers and their helm runs (the server's process group, which it leads until reaped)."""
    import signal

    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.wait()
    _close(server)


def _close(server: Any) -> None:
    for pipe in (server.stdin, server.stdout):
        try:
            pipe.close()
        except OSError:  # what was left unsent has no reader
            pass
