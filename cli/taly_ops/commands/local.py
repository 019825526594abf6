"""`taly local up|down|status`: the estate's data plane on this machine, on loopback, without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..local.sample_data import DEFAULT_SIZE
from ..render import Output, console, emit
from ._typer import LOCAL_STATE_DIR_HELP, TalyTyper, progress

app = TalyTyper(
    help="A local copy of the estate on 127.0.0.1: PostgreSQL primary + replica, Redis primary + replica, "
         "RabbitMQ, an AWS emulator (moto), Prometheus, and a local Kubernetes cluster running the CMS services. "
         "No Docker.",
    no_args_is_help=True,
)



def _state_dir(option: Optional[Path]) -> Path:
    from ..local.state import resolve_state_dir

    return resolve_state_dir(option)


@app.command()
def up(
    size: int = typer.Option(DEFAULT_SIZE, "--size", "-n", help="Rows of sample CMS data (same size, same data)."),
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=LOCAL_STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table for people, json for machines."),
) -> None:
    """Start the local estate (or report it, if it already runs). Progress goes to stderr.

    Ports are chosen at run time; the endpoints and passwords are in the state file (mode 600).
    Components of the estate that have stopped are started again, on the same ports over the same data;
    an estate's data is only ever deleted by `taly local down`.
    JSON: {"components": [{name, pid, port, status, ...}], "endpoints", "already_running", "restarted", "seconds"}.
    Exit 3 names the component that could not start and shows the end of its log.
    """
    from ..local import estate

    result = estate.up(_state_dir(state_dir), size=size, progress=progress)
    emit(output, result.to_json(), _table)


@app.command()
def down(
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=LOCAL_STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table for people, json for machines."),
) -> None:
    """Stop exactly what `up` started (by pid), wait for it, and remove the state directory's files.

    Scratch instances that drills left behind are reaped first; a drill still running is named, with
    how to remove its instance should it not tear it down itself.
    """
    from ..local import estate
    from ..operations import drills

    drills.reap_before_down(_state_dir(state_dir), progress=progress)
    result = estate.down(_state_dir(state_dir), progress=progress)
    emit(output, result.to_json(), _down_table)


@app.command()
def status(
    state_dir: Optional[Path] = typer.Option(None, "--state-dir", help=LOCAL_STATE_DIR_HELP),
    output: Output = typer.Option(Output.table, "--output", "-o", help="table for people, json for machines."),
) -> None:
    """Each component with its pid, port and status (running/stopped).

    JSON: {"components": [{"name", "pid", "port", "status", ...}], "state_file", "endpoints"} (no passwords).
    Exit 0 when every component runs, 1 when some are stopped, 2 when there is no local estate.
    """
    from ..environment import no_local_estate
    from ..local import estate

    directory = _state_dir(state_dir)
    data = estate.status(directory)
    components = data["components"]
    if data["state_file"] is None:
        raise no_local_estate(directory)
    emit(output, data, _table)
    if not components or any(c["status"] != "running" for c in components):
        raise typer.Exit(1)


def _where(c: dict[str, Any]) -> str:
    """What a person needs to connect, without a secret."""
    bits = [f"{c.get('host', '127.0.0.1')}:{c['port']}"] if c.get("port") else []
    name = c["name"]
    if name.endswith("-exporter"):
        bits.append(f"scrapes {c.get('target')}")
    elif name.startswith("postgres-"):
        bits.append(f"{c.get('role')}, db {c.get('database')}, user {c.get('user')}")
    elif name.startswith("redis-"):
        bits.append(str(c.get("role")))
    elif name == "rabbitmq":
        bits.append(f"node {c.get('node')}, user {c.get('user')}, management :{c.get('management_port')}, "
                    f"metrics :{c.get('prometheus_port')}")
    elif name == "moto":
        bits.append(str(c.get("endpoint_url")))
    elif name == "prometheus":
        bits.append(str(c.get("url")))
    elif name == "kube":
        bits.append(f"{c.get('url')}  context {c.get('context')}, kubeconfig {c.get('kubeconfig')}")
    return "  ".join(bits)


def _table(data: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    if not data["components"]:
        out.print(f"no local estate in {data['state_dir']}")
        return
    title = "local estate" + (" (already running)" if data.get("already_running") else "")
    if data.get("restarted"):
        title += f", started again: {', '.join(data['restarted'])} (same ports, same data), in {data['seconds']}s"
    elif data.get("seconds") is not None and not data.get("already_running"):
        title += f", up in {data['seconds']}s"
    table = Table(title=title, title_justify="left")
    for col in ("component", "pid", "port", "status", "endpoint"):
        table.add_column(col, justify="right" if col in ("pid", "port") else "left")
    for c in data["components"]:
        colour = "green" if c["status"] == "running" else "red"
        table.add_row(c["name"], str(c["pid"]), str(c["port"] or ""), f"[{colour}]{c['status']}[/{colour}]", _where(c))
    out.print(table)
    out.print(f"state file: {data['state_file']} (passwords are there, mode 600)", highlight=False)
    kube = next((c for c in data["components"] if c["name"] == "kube"), None)
    if kube:
        out.print(f"cluster: export KUBECONFIG={kube.get('kubeconfig')}; kubectl --context {kube.get('context')} "
                  "get deploy,pods", highlight=False)


def _down_table(data: dict[str, Any]) -> None:
    out = console()
    if not data["stopped"]:
        out.print(f"nothing was running in {data['state_dir']}", highlight=False)
        return
    names = ", ".join(f"{s['name']} ({s['pid']})" for s in data["stopped"] if s["was_running"])
    out.print(f"stopped in {data['seconds']}s: {names or 'nothing was still running'}", highlight=False)
