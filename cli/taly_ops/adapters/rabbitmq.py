"""RabbitMQ's management HTTP API (basic auth): what the health checks read and the local estate declares.

An HTTP error passes through as urllib.error.HTTPError (a health check tells 503 "not ok" and 404
"no such endpoint in this version" apart); `error_text` words any failure as one line.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

HTTPError = urllib.error.HTTPError


@dataclass(frozen=True)
class Management:
    url: str  # the API's base URL, ending in / (the node's, or Amazon MQ's console)
    user: str
    password: str

    def request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        """One call to /api/<path>; the JSON answer (None for an empty one)."""
        req = urllib.request.Request(urllib.parse.urljoin(self.url, "api/" + path), method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode())
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def get(self, path: str, timeout: float = 5.0) -> Any:
        return self.request("GET", path, timeout=timeout)


def error_body(exc: HTTPError) -> dict:
    try:
        return json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return {}


def error_text(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
