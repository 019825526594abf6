"""Value types and parsers of the stack config: days, Kubernetes quantities, CIDR blocks, AWS schedules."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import Field

Days = Annotated[int, Field(ge=1, le=3650)]
# Kubernetes quantities, in the forms the chart's values.schema.json accepts (memory in Mi or Gi only).
CpuQuantity = Annotated[str, Field(pattern=r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")]
MemoryQuantity = Annotated[str, Field(pattern=r"^[1-9][0-9]*(Mi|Gi)$")]


def millicores(quantity: str) -> int:
    """"250m" -> 250, "1.5" -> 1500."""
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def mebibytes(quantity: str) -> int:
    """"512Mi" -> 512, "2Gi" -> 2048."""
    return int(quantity[:-2]) * (1024 if quantity.endswith("Gi") else 1)


def runs_at_least_daily(schedule: str) -> bool:
    """Whether an AWS schedule expression (`cron(m h dom mon dow year)` or `rate(n unit)`) fires every day."""
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", schedule)
    if rate:
        return 1 <= int(rate.group(1)) <= {"minute": 1440, "hour": 24, "day": 1}[rate.group(2)]
    cron = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", schedule)
    return bool(cron) and cron.group(3) in ("*", "?") and cron.group(4) == "*" and cron.group(5) in ("*", "?")


def cidr_block(value: str) -> str:
    """An IPv4 CIDR block in canonical form, or ValueError saying what is wrong."""
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a CIDR block ({exc})") from None
    if net.version != 4:
        raise ValueError("must be an IPv4 CIDR block")
    return str(net)
