"""RabbitMQ through its management HTTP API (basic auth): the node runs without local alarms, the virtual
hosts answer, every work queue and its dead-letter queue exist, work queues are within the depth
thresholds and have consumers, and dead-letter queues (`*.dlq`) are empty.

The management API's queue counts are refreshed every few seconds (collect_statistics_interval), so a
message published a moment ago may not be counted yet.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from ..adapters import rabbitmq as mq
from ..environment import Environment, Login
from .model import CredentialsUnavailable, Probe, Recorder, guarded
from .thresholds import Thresholds

C = "rabbitmq"
REQUIRES = ()  # imported by the operation before the clocks start
VHOST = "/"


@dataclass
class RabbitAccess:
    management_url: Callable[[], str]  # base URL, ending in /
    login: Callable[[], Login]
    work_queues: list[str]
    dead_letter_suffix: str = ".dlq"

    @classmethod
    def of(cls, env: Environment) -> "RabbitAccess":
        return cls(env.rabbitmq_management_url, env.rabbitmq_login, env.work_queues())


def probes(env: Environment, th: Thresholds) -> list[Probe]:
    access = RabbitAccess.of(env)
    t = th.timeouts.rabbitmq
    return [
        Probe(C, "node running", partial(nodes, access, t), liveness=True, timeout=t),
        Probe(C, "virtual hosts", partial(vhosts, access, t), timeout=t),
        Probe(C, "queues", partial(queues, access, th, t), timeout=t),
    ]


def get(access: RabbitAccess, path: str, timeout: float) -> Any:
    url = guarded("the broker's management URL", access.management_url)
    login = guarded("the broker's credentials", access.login)
    return mq.Management(url, login.user, login.password).get(path, timeout=max(timeout - 0.5, 0.5))


_error = mq.error_text


def nodes(access: RabbitAccess, timeout: float):
    rec = Recorder(C)
    try:
        data = get(access, "nodes?columns=name,running,mem_alarm,disk_free_alarm,mem_used,mem_limit", timeout)
    except CredentialsUnavailable as exc:
        rec.add("node running", "unknown", "no credentials", None, str(exc))
        return rec.results
    except Exception as exc:  # noqa: BLE001 - no answer is the verdict
        rec.add("node running", "fail", "no answer", None, f"GET /api/nodes: {_error(exc)}")
        return rec.results
    down = [n["name"] for n in data if not n.get("running")]
    rec.add("node running", "fail" if down or not data else "ok",
            f"{len(data) - len(down)} of {len(data)} running", "all running",
            f"GET /api/nodes -> {', '.join(n['name'] + ('' if n.get('running') else ' (down)') for n in data) or 'none'}")
    alarms = [f"{n['name']}: {alarm}" for n in data for alarm in ("mem_alarm", "disk_free_alarm") if n.get(alarm)]
    mem = max((100.0 * n["mem_used"] / n["mem_limit"] for n in data if n.get("mem_limit") and n.get("mem_used")),
              default=None)
    rec.add("local alarms", "fail" if alarms else "ok", ", ".join(alarms) or "none",
            "no mem_alarm, no disk_free_alarm",
            "GET /api/nodes: mem_alarm, disk_free_alarm" + (f" (memory {mem:.0f} % of the watermark)" if mem else ""))
    return rec.results


def vhosts(access: RabbitAccess, timeout: float):
    rec = Recorder(C)
    try:
        data = get(access, "health/checks/virtual-hosts", timeout)
        call = "GET /api/health/checks/virtual-hosts"
    except mq.HTTPError as exc:
        if exc.code == 503:  # the health check's own "not ok"
            body = mq.error_body(exc)
            rec.add("virtual hosts", "fail", "down", "all up",
                    f"GET /api/health/checks/virtual-hosts -> 503 {body.get('reason') or body}")
            return rec.results
        if exc.code != 404:
            raise
        data = get(access, "aliveness-test/" + urllib.parse.quote(VHOST, safe=""), timeout)  # before 3.8.10
        call = "GET /api/aliveness-test/%2F"
    ok = isinstance(data, dict) and data.get("status") == "ok"
    rec.add("virtual hosts", "ok" if ok else "fail", "up" if ok else "down", "all up", f"{call} -> {data}")
    return rec.results


def queues(access: RabbitAccess, th: Thresholds, timeout: float):
    rec = Recorder(C)
    limits = th.rabbitmq
    data = get(access, "queues?columns=name,vhost,messages,messages_ready,consumers,state", timeout)
    found = {q["name"]: q for q in data if q.get("vhost", VHOST) == VHOST}
    call = f"GET /api/queues ({len(found)} queues in vhost /)"

    wanted = access.work_queues + [q + access.dead_letter_suffix for q in access.work_queues]
    missing = [q for q in wanted if q not in found]
    rec.add("queues declared", "fail" if missing else "ok", f"{len(wanted) - len(missing)} of {len(wanted)}",
            "every work queue and its .dlq", f"{call}; missing: {', '.join(missing)}" if missing else call)

    dlqs = {n: q for n, q in found.items() if n.endswith(access.dead_letter_suffix)}
    work = {n: q for n, q in found.items() if n not in dlqs and (n in access.work_queues or n.startswith("taly."))}

    def count(q: dict, key: str = "messages") -> int:
        return int(q.get(key) or 0)

    lim = limits.dead_letters
    dead = sorted(((count(q), n) for n, q in dlqs.items() if count(q) > 0), reverse=True)
    total = sum(c for c, _ in dead)
    worst = dead[0][0] if dead else 0
    rec.add("dead-letter queues", lim.grade(worst), f"{total} message(s)" + (f" in {len(dead)} queue(s)" if dead else ""),
            lim.describe(" per queue"),
            f"{call}: " + (", ".join(f"{n}={c}" for c, n in dead[:5]) if dead else f"all {len(dlqs)} *.dlq empty"))

    lim = limits.queue_depth
    depths = sorted(((count(q, "messages_ready"), n) for n, q in work.items()), reverse=True)
    deepest = depths[0] if depths else (0, None)
    rec.add("queue depth", lim.grade(deepest[0]), f"{deepest[0]} ready" + (f" ({deepest[1]})" if deepest[0] else ""),
            lim.describe(" ready"), f"{call}: deepest work queues " +
            (", ".join(f"{n}={c}" for c, n in depths[:3]) if depths else "none"))

    idle = sorted(n for n, q in work.items() if int(q.get("consumers") or 0) == 0)
    status = "warn" if idle and limits.consumers_required else "ok"
    rec.add("consumers", status, f"{len(work) - len(idle)} of {len(work)} work queues consumed",
            ">= 1 consumer per work queue" if limits.consumers_required else "not required",
            f"{call}: without consumers: {', '.join(idle)}" if idle else f"{call}: every work queue has a consumer")
    return rec.results
