"""The backups bucket through boto3: upload, download (with progress), list, read and write JSON.

The client comes from the environment's AWS adapter (adapters/aws.py); botocore is imported inside
the functions. A missing bucket or an endpoint that does not answer is
Unreachable (exit 3); a missing key is KeyError for the caller to judge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import Unreachable
from .aws import Aws

Progress = Callable[[str], None]


@dataclass
class Store:
    bucket: str
    aws: Aws
    _checked: bool = False

    @property
    def client(self):
        return self.aws.client("s3")

    @property
    def endpoint_url(self) -> str | None:
        return self.aws.target.endpoint_url

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "404") and "key" not in what:
                raise Unreachable(f"the backups bucket {self.bucket} does not exist ({what})",
                                  hint="locally: is the estate up (`taly local status`)? in AWS: is the contract current?") from None
            if code in ("NoSuchKey", "404"):
                raise KeyError(what) from None
            raise Unreachable(f"S3 {what} on {self.bucket} failed: {code or exc}") from None
        except BotoCoreError as exc:
            raise Unreachable(f"S3 at {self.endpoint_url or 'AWS'} did not answer ({what}): {exc}") from None

    def check(self) -> None:
        if self._checked:
            return
        self._call("head bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        self._checked = True

    def upload_file(self, path: Path, key: str) -> None:
        self._call(f"upload {key}", lambda: self.client.upload_file(str(path), self.bucket, key))

    def download_file(self, key: str, path: Path, progress: Progress | None = None, size: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        done = [0]

        def tick(n: int) -> None:
            done[0] += n

        self._call(f"download key {key}", lambda: self.client.download_file(self.bucket, key, str(path), Callback=tick))
        if progress:
            progress(f"  {key} {done[0]:,} bytes" + (f" of {size:,}" if size else ""))

    def put_json(self, key: str, data: Any) -> None:
        body = json.dumps(data, indent=2, default=str).encode()
        self._call(f"put {key}", lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                                ContentType="application/json"))

    def get_json(self, key: str) -> Any:
        resp = self._call(f"get key {key}", lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        return json.loads(resp["Body"].read())

    def keys(self, prefix: str, delimiter: str | None = None) -> Iterator[dict[str, Any]]:
        """Objects (and, with a delimiter, {"Prefix": ...} entries) under prefix."""
        token = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(f"list {prefix}", lambda: self.client.list_objects_v2(**kwargs))
            yield from page.get("CommonPrefixes", [])
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
