"""Prometheus's HTTP API: instant queries (prometheus-api-client), readiness and the active targets.

The local estate's Prometheus answers plain HTTP; Amazon Managed Prometheus needs SigV4 (pass
`adapters.aws.SigV4Auth` as `auth`). No retries: a caller with a deadline gets an error in time.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

REQUIRES = ("prometheus_api_client", "urllib3.util.retry")  # what a caller may import ahead of its deadlines


@dataclass(frozen=True)
class Prometheus:
    url: str          # the base URL, without a trailing /
    auth: Any = None  # requests auth (SigV4 for AMP), or None

    def query(self, expr: str, timeout: float) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        prom = PrometheusConnect(url=self.url, retry=Retry(total=0, connect=0, read=0, redirect=0), auth=self.auth,
                                 timeout=max(timeout - 0.5, 0.5))
        return prom.custom_query(expr)

    def ready(self, timeout: float = 2.0) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=timeout) as resp:
            return resp.status == 200

    def targets(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The active scrape targets: job, scrape URL, health ("up", "down", "unknown"), last error."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets?state=active", timeout=timeout) as resp:
            data = json.load(resp)
        return [{"job": t["labels"].get("job"), "url": t.get("scrapeUrl"), "health": t.get("health"),
                 "error": t.get("lastError")} for t in data["data"]["activeTargets"]]
