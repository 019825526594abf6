"""The backups bucket through boto3: upload, download (with progress), list, read and write JSON, and
conditional writes (S3's `If-None-Match: *` and `If-Match: <etag>`) for records that must never be
overwritten or must change only from the version read (the release catalogue, ledger and lock).

The client comes from the environment's AWS adapter (adapters/aws.py); botocore is imported inside
the functions. A missing bucket or an endpoint that does not answer is
Unreachable (exit 3); a missing key is KeyError for the caller to judge.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import Unreachable
from .aws import Aws

Progress = Callable[[str], None]
CONFLICT_RETRIES = 5  # S3 answers 409 ConditionalRequestConflict to a write racing another; it asks for a retry


@dataclass(frozen=True)
class Blob:
    """An object's bytes as read, with the ETag a conditional write names and when it was last written."""

    body: bytes
    etag: str
    last_modified: dt.datetime | None = None


_LOST = object()      # the condition did not hold: the object exists (If-None-Match) or changed or went (If-Match)
_CONFLICT = object()  # 409: a concurrent conditional write was in flight


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
            if code == "NoSuchBucket" or (code == "404" and "key" not in what):  # HEAD answers a bare 404
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

    def get(self, key: str) -> Blob:
        """The object's bytes and ETag; KeyError when there is none."""
        resp = self._call(f"get key {key}", lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        return Blob(resp["Body"].read(), resp["ETag"], resp.get("LastModified"))

    def put_new(self, key: str, body: bytes) -> str | None:
        """Write key only if no object has that key (`If-None-Match: *`): its ETag, or None when one exists."""
        return self._conditional(f"put key {key} if absent", lambda: self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*")["ETag"])

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        """Replace key only if it is still the version read (`If-Match: etag`): the new ETag, or None when the
        object changed or is gone."""
        return self._conditional(f"put key {key} if unchanged", lambda: self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", IfMatch=etag)["ETag"])

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete key only if it is still the version read: False when it changed or is gone."""
        return self._conditional(f"delete key {key} if unchanged", lambda: self.client.delete_object(
            Bucket=self.bucket, Key=key, IfMatch=etag)) is not None

    def _conditional(self, what: str, fn: Callable[[], Any]) -> Any:
        """fn's result; None when its condition did not hold (412, or 404 for If-Match on a missing object).
        A 409 (a concurrent conditional write in flight) is retried, as S3 asks."""
        from botocore.exceptions import ClientError

        def attempt() -> Any:
            try:
                return fn()
            except ClientError as exc:
                error = exc.response.get("Error", {})
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if error.get("Code") in ("PreconditionFailed", "NoSuchKey") or status == 412:
                    return _LOST
                if error.get("Code") == "ConditionalRequestConflict" or status == 409:
                    return _CONFLICT
                raise

        for n in range(CONFLICT_RETRIES):
            result = self._call(what, attempt)
            if result is not _CONFLICT:
                return None if result is _LOST else result
            time.sleep(0.05 * 2 ** n)
        raise Unreachable(f"S3 {what} on {self.bucket}: {CONFLICT_RETRIES} attempts met a concurrent write (409)")

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
