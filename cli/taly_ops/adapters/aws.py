"""AWS: one boto3 session per process and the clients made from it.

Every AWS client of the CLI comes from here. With no explicit endpoint, boto3's standard chains
apply: credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO, instance roles ...) and endpoints
(AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>). The local estate's emulator passes its own endpoint
and dummy keys. boto3 is imported on first use, so importing this module costs nothing.

A Session is not thread-safe, so clients are made under a lock; the clients themselves are, and are
cached per (service, timeout) for the life of an `Aws`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

_SESSION: Any = None  # boto3.session.Session; one per process: its loaders cache the service models
_SESSION_LOCK = threading.Lock()


def session():
    """The process's boto3 session (call with _SESSION_LOCK held when making clients)."""
    global _SESSION
    if _SESSION is None:
        import boto3

        _SESSION = boto3.session.Session()
    return _SESSION


@dataclass(frozen=True)
class AwsTarget:
    """Where AWS answers: a region, and for an emulator its endpoint and keys (None: the standard chains)."""

    region: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @property
    def emulated(self) -> bool:
        return self.endpoint_url is not None


@dataclass
class Aws:
    """Clients for one AWS target.

    `client(service)` is for operations: standard retries, patient reads. `client(service, timeout=t)`
    is for probes that must answer within t seconds: one attempt, connect and read timeouts under t.
    """

    target: AwsTarget
    _clients: dict[tuple[str, float | None], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def region(self) -> str:
        return self.target.region

    def client(self, service: str, timeout: float | None = None):
        key = (service, timeout)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(service, timeout)
            return self._clients[key]

    def _make(self, service: str, timeout: float | None):
        from botocore.config import Config

        s3 = {"addressing_style": "path"} if self.target.emulated else None
        if timeout is None:
            config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60, s3=s3)
        else:
            io = max(timeout - 0.5, 0.5)  # its own error before the probe's deadline
            config = Config(connect_timeout=min(io, 3), read_timeout=io,
                            retries={"mode": "standard", "total_max_attempts": 1}, s3=s3)
        kwargs: dict[str, Any] = {"region_name": self.target.region, "config": config}
        if self.target.emulated:
            kwargs |= {"endpoint_url": self.target.endpoint_url, "aws_access_key_id": self.target.access_key_id,
                       "aws_secret_access_key": self.target.secret_access_key}
        with _SESSION_LOCK:
            return session().client(service, **kwargs)

    def frozen_credentials(self):
        """The credentials requests are signed with (botocore ReadOnlyCredentials), or None when there are none."""
        if self.target.emulated:
            from botocore.credentials import ReadOnlyCredentials

            return ReadOnlyCredentials(self.target.access_key_id, self.target.secret_access_key, None)
        with _SESSION_LOCK:
            credentials = session().get_credentials()
        return credentials.get_frozen_credentials() if credentials is not None else None


class SigV4Auth:
    """requests auth that signs with the target's credentials (Amazon Managed Prometheus: service "aps")."""

    def __init__(self, aws: Aws, service: str) -> None:
        self.aws, self.service = aws, service

    def __call__(self, request):
        from botocore.auth import SigV4Auth as Signer
        from botocore.awsrequest import AWSRequest

        credentials = self.aws.frozen_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials to sign the request with")
        signed = AWSRequest(method=request.method, url=request.url, data=request.body,
                            headers={k: v for k, v in request.headers.items() if k.lower() in ("host", "content-type")})
        Signer(credentials, self.service, self.aws.region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request
