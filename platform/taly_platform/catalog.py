"""The CMS services the estate runs, and what each one may touch.

One entry per service: adding a service is one line here (its IAM role, its settings in
Parameter Store and, with the charts, its Kubernetes objects follow from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaAccess = Literal["none", "read", "write"]


@dataclass(frozen=True)
class Service:
    name: str
    port: int = 3000
    database: bool = True
    cache: bool = True
    broker: bool = True
    media: MediaAccess = "none"
    public: bool = False  # reachable from the internet through the load balancer


CATALOG: tuple[Service, ...] = (
    Service("api-gateway", database=False, public=True),
    Service("auth"),
    Service("content", media="write"),
    Service("search", media="read"),
    Service("notification", database=False),
    Service("payment", cache=False),
    Service("booking"),
    Service("catalog", media="read"),
    Service("users"),
    Service("worker", media="read"),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in CATALOG)


def service(name: str) -> Service:
    for s in CATALOG:
        if s.name == name:
            return s
    raise KeyError(name)
