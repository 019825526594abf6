"""RabbitMQ: one self-contained node with the management and Prometheus plugins, and the CMS queues.

Self-contained means its own node name, ports, epmd (started here, on its own port), Mnesia and log
directories, config, enabled-plugins file and Erlang cookie (HOME is the node's directory), so it
neither sees nor disturbs a system RabbitMQ. The /usr/sbin wrapper would switch user and data
directory, so the node starts from /usr/lib/rabbitmq/bin with -detached; the beam process it forks
writes its pid to RABBITMQ_PID_FILE, and that is the pid recorded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..adapters.rabbitmq import Management
from .context import HOST, USER, Context
from .state import Component
from . import supervisor

BIN_ENV = "TALY_RABBITMQ_BIN"
DEFAULT_BIN = Path("/usr/lib/rabbitmq/bin")
DLX = "taly.dlx"
EVENTS = "taly.events"


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_ENV) or DEFAULT_BIN)


def epmd_binary() -> str | None:
    found = shutil.which("epmd")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))
    return str(candidates[-1]) if candidates else None


def preflight() -> list[tuple[str, str]]:
    problems = []
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not (bin_dir() / tool).is_file():
            problems.append((f"RabbitMQ's {tool} is not in {bin_dir()}",
                             f"apt-get install rabbitmq-server, or set {BIN_ENV} to its scripts directory"))
            break
    if not epmd_binary():
        problems.append(("Erlang's epmd is not installed", "apt-get install erlang-base"))
    return problems


def broker_services() -> list[str]:
    from taly_platform.catalog import CATALOG

    return [s.name for s in CATALOG if s.broker]


def queue_names() -> list[str]:
    return [f"taly.{name}" for name in broker_services()]


def node_name(amqp_port: int) -> str:
    return f"taly-{amqp_port}@localhost"


def _env(base: Path, node: str, amqp: int, dist: int, epmd: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    return env | {
        "HOME": str(base),  # the Erlang cookie lives here, with the node
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "ERL_EPMD_ADDRESS": HOST,
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),  # empty: ignore /etc/rabbitmq/rabbitmq-env.conf
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "LC_ALL": "C.UTF-8",
    }


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _api(port: int, password: str, method: str, path: str, body: dict | None = None, timeout: float = 5.0):
    return Management(f"http://{HOST}:{port}/", USER, password).request(method, path, body, timeout)


def api_get(port: int, password: str, path: str):
    return _api(port, password, "GET", path)


def start(ctx: Context) -> None:
    pw = ctx.passwords["rabbitmq"]
    p = ctx.ports
    amqp, mgmt, prom = p["amqp"], p["rabbitmq-management"], p["rabbitmq-prometheus"]
    base = ctx.state_dir / "rabbitmq"
    base.mkdir(mode=0o700, exist_ok=True)
    for sub in ("mnesia", "log"):
        (base / sub).mkdir(mode=0o700, exist_ok=True)
    _write_private(base / "rabbitmq.conf", "\n".join([
        f"listeners.tcp.1 = {HOST}:{amqp}",
        f"management.tcp.ip = {HOST}", f"management.tcp.port = {mgmt}",
        f"prometheus.tcp.ip = {HOST}", f"prometheus.tcp.port = {prom}",
        "prometheus.return_per_object_metrics = true",  # per-queue series: the dead-letter alert needs them
        f"default_user = {USER}", f"default_pass = {pw}", "default_user_tags.administrator = true",
        "default_permissions.configure = .*", "default_permissions.read = .*", "default_permissions.write = .*",
        "log.file.level = info", "log.console = false",
        # Queue counts (messages, consumers) in the management API every second, not every 5: `taly local up`
        # waits for the cluster's consumers to show, and health reads them.
        "collect_statistics_interval = 1000",
    ]) + "\n")
    (base / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_prometheus].\n")
    (base / "rabbitmq-env.conf").write_text("")
    _start_epmd(ctx)
    _start_node(ctx)


def restart(ctx: Context, dead: set[str]) -> None:
    """Start epmd and the node again, on their ports, over the node's own Mnesia directory (queues and messages kept)."""
    if "epmd" in dead:
        _start_epmd(ctx)
    if "rabbitmq" in dead:
        _start_node(ctx)


def _node_env(ctx: Context) -> dict[str, str]:
    p = ctx.ports
    return _env(ctx.state_dir / "rabbitmq", node_name(p["amqp"]), p["amqp"], p["rabbitmq-dist"], p["epmd"])


def _start_epmd(ctx: Context) -> None:
    """Our own epmd, on our own port: the node registers with it, and `down` stops it by pid."""
    epmd_port = ctx.ports["epmd"]
    elog = ctx.log("epmd")
    spawned = supervisor.spawn([epmd_binary(), "-port", str(epmd_port), "-address", HOST], log=elog, env=_node_env(ctx),
                               cwd=ctx.state_dir / "rabbitmq")
    ctx.record("epmd", spawned, epmd_port, elog, host=HOST)
    ctx.wait(lambda: supervisor.port_open(epmd_port), component="epmd", what="listening port", timeout=10, log=elog,
             pid=spawned.pid)


def _start_node(ctx: Context) -> None:
    pw = ctx.passwords["rabbitmq"]
    p = ctx.ports
    amqp, dist, epmd_port = p["amqp"], p["rabbitmq-dist"], p["epmd"]
    mgmt, prom = p["rabbitmq-management"], p["rabbitmq-prometheus"]
    node = node_name(amqp)
    base = ctx.state_dir / "rabbitmq"
    log = ctx.log("rabbitmq")
    node_log = base / "log" / f"{node}.log"
    ctx.say("rabbitmq", f"starting node {node}")
    (base / "rabbit.pid").unlink(missing_ok=True)  # a killed node's: the new one writes its own
    launcher = supervisor.spawn([str(bin_dir() / "rabbitmq-server"), "-detached"], log=log, env=_node_env(ctx),
                                cwd=base)
    try:
        code = launcher.popen.wait(timeout=60)
    except subprocess.TimeoutExpired:
        supervisor.stop(launcher.pid, launcher.start_time, pgid=launcher.pgid, timeout=2)
        raise supervisor.StartFailed("rabbitmq", "rabbitmq-server -detached did not return", log) from None
    if code != 0:
        raise supervisor.StartFailed("rabbitmq", f"rabbitmq-server -detached exited with {code}", log)

    # Not cancellable: once launched, the node must be found (and recorded) so that it can be stopped.
    pidfile = base / "rabbit.pid"
    try:
        supervisor.wait_until(lambda: pidfile.read_text().strip().isdigit(), component="rabbitmq", what="pid file",
                              timeout=30, log=node_log if node_log.exists() else log)
        beam = int(pidfile.read_text().strip())
    except supervisor.StartFailed:
        beam = _find_beam(node)
        if beam is None:
            raise
    spawned = supervisor.Spawned(beam, supervisor.start_time(beam), supervisor.pgid_of(beam))
    ctx.record("rabbitmq", spawned, amqp, node_log, host=HOST, node=node, user=USER, management_port=mgmt,
               prometheus_port=prom, dist_port=dist, epmd_port=epmd_port, base=str(base),
               management_url=f"http://{HOST}:{mgmt}/", prometheus_url=f"http://{HOST}:{prom}/metrics")
    ctx.wait(lambda: api_get(mgmt, pw, "overview") is not None and supervisor.port_open(amqp) and supervisor.port_open(prom),
             component="rabbitmq", what="management API and AMQP listener", timeout=60, log=node_log, pid=beam,
             interval=0.1)
    ctx.say("rabbitmq", f"ready on {HOST}:{amqp} (management {mgmt}); declaring queues")
    declare_topology(mgmt, pw)
    ctx.say("rabbitmq", f"declared {len(queue_names())} queues, their dead-letter queues and {DLX}")


def _find_beam(node: str) -> int | None:
    """The beam process of `node`, by its environment, when the pid file is missing."""
    wanted = f"RABBITMQ_NODENAME={node}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if b"beam" in Path(f"/proc/{entry}/cmdline").read_bytes() and \
                    wanted in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                return int(entry)
        except OSError:
            continue
    return None


def declare_topology(port: int, password: str) -> None:
    """A work queue per broker-using service, dead-lettering through taly.dlx into taly.<service>.dlq."""
    vhost = urllib.parse.quote("/", safe="")
    _api(port, password, "PUT", f"exchanges/{vhost}/{DLX}", {"type": "direct", "durable": True})
    _api(port, password, "PUT", f"exchanges/{vhost}/{EVENTS}", {"type": "topic", "durable": True})
    for svc in broker_services():
        queue, dlq = f"taly.{svc}", f"taly.{svc}.dlq"
        _api(port, password, "PUT", f"queues/{vhost}/{dlq}", {"durable": True, "arguments": {}})
        _api(port, password, "POST", f"bindings/{vhost}/e/{DLX}/q/{dlq}", {"routing_key": queue})
        _api(port, password, "PUT", f"queues/{vhost}/{queue}", {"durable": True, "arguments": {
            "x-dead-letter-exchange": DLX, "x-dead-letter-routing-key": queue}})
        _api(port, password, "POST", f"bindings/{vhost}/e/{EVENTS}/q/{queue}", {"routing_key": f"{svc}.#"})


def stop(component: Component) -> bool:
    """SIGKILL the node and what it forked, at once: `stop` is only ever for an estate about to be deleted.

    Its Mnesia directory goes right after. A graceful stop (`rabbitmqctl stop`, or SIGTERM) takes the
    Erlang VM about 6 s to exit on this machine, to write out what is then deleted.
    """
    return supervisor.stop(component.pid, component.start_time, pgid=component.pgid, sig=signal.SIGKILL, timeout=5)