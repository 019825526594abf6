"""The local image registry: which image references exist, and how the stand-in behaves when it runs each.

A JSON file (<state>/cluster/images.json) that `taly local` pushes to and the kubelet pulls from.
References are digest-pinned as in ECR: `<registry>/taly/<service>:<tag>@sha256:<64 hex>`. The
digest is derived from what the image is (service, tag, behaviour), so pushing the same image twice
gives the same reference, and a different behaviour under the same tag a different one.

Resolving, as a registry and containerd do: a reference with a digest names that image (its tag, if
any, is not consulted, as containerd ignores it); one without a digest names what its tag points to
now (the last push of that tag). Anything else cannot be pulled: `resolve` returns None.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from ...errors import BadInput

REGISTRY = "registry.taly.local"
BEHAVIOURS = ("healthy", "crash", "never-ready")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REF = re.compile(r"^(?P<repo>[^@\s]+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@sha256:(?P<digest>[0-9a-f]{64}))?$")


@dataclass(frozen=True)
class Image:
    """One pushed image: what the kubelet runs and how it behaves."""

    registry: str
    service: str
    tag: str
    behaviour: str = "healthy"
    error_rate: float = 0.0
    latency_ms: int = 0
    digest: str = ""            # "sha256:<64 hex>"

    @property
    def repository(self) -> str:
        return f"{self.registry}/taly/{self.service}"

    @property
    def reference(self) -> str:
        """What a pod spec names: repository:tag@digest."""
        return f"{self.repository}:{self.tag}@{self.digest}"

    @property
    def image_id(self) -> str:
        """What the kubelet reports as a container's imageID: repository@digest."""
        return f"{self.repository}@{self.digest}"


def digest_of(service: str, tag: str, behaviour: str, error_rate: float, latency_ms: int) -> str:
    canonical = json.dumps({"service": service, "tag": tag, "behaviour": behaviour, "error_rate": error_rate,
                            "latency_ms": latency_ms}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _validate(service: str, tag: str, behaviour: str, error_rate: float, latency_ms: int) -> None:
    if not isinstance(service, str) or not _NAME.match(service):
        raise BadInput(f"image service {service!r} is not a DNS label (lower-case letters, digits, '-')")
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise BadInput(f"image tag {tag!r} is not a valid tag (letters, digits, '_', '.', '-'; at most 128)")
    if behaviour not in BEHAVIOURS:
        raise BadInput(f"image behaviour {behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
    if isinstance(error_rate, bool) or not isinstance(error_rate, (int, float)) or not 0 <= error_rate <= 1:
        raise BadInput(f"image error rate {error_rate!r} is not a fraction between 0 and 1")
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or not 0 <= latency_ms <= 60_000:
        raise BadInput(f"image latency {latency_ms!r} is not a whole number of milliseconds between 0 and 60000")


class ImageRegistry:
    """The registry file: read whenever it changed on disk, written under a lock (several `taly` may push)."""

    def __init__(self, path: Path | str, registry: str = REGISTRY) -> None:
        self.path = Path(path)
        self.registry = registry
        self._cache: tuple[tuple[int, int, int], dict] | None = None

    def push(self, service: str, tag: str, behaviour: str = "healthy", error_rate: float = 0.0,
             latency_ms: int = 0) -> str:
        """Store the image and point its tag at it; its digest-pinned reference."""
        _validate(service, tag, behaviour, error_rate, latency_ms)
        image = Image(self.registry, service, tag, behaviour, float(error_rate), latency_ms,
                      digest_of(service, tag, behaviour, float(error_rate), latency_ms))
        with self._locked() as data:
            data["images"][image.digest.removeprefix("sha256:")] = {
                k: v for k, v in asdict(image).items() if k not in ("registry", "digest")}
            data["tags"][f"{image.repository}:{tag}"] = image.digest
        return image.reference

    def resolve(self, reference: str) -> Image | None:
        """The image a pod's reference names, or None when it cannot be pulled."""
        m = _REF.match(reference or "")
        if not m:
            return None
        data = self._read()
        repo, tag, digest = m["repo"], m["tag"], m["digest"]
        if digest is None:
            if tag is None:
                return None  # no tag and no digest means :latest, which this registry never has
            digest = data["tags"].get(f"{repo}:{tag}", "").removeprefix("sha256:")
        entry = data["images"].get(digest or "")
        if entry is None:
            return None
        image = self._image(digest, entry)
        return image if image.repository == repo else None

    def list(self) -> list[Image]:
        data = self._read()
        return sorted((self._image(d, e) for d, e in data["images"].items()), key=lambda i: (i.service, i.tag, i.digest))

    def tags(self) -> dict[str, str]:
        """{repository:tag -> sha256:digest} as the last pushes left them."""
        return dict(self._read()["tags"])

    def _image(self, digest: str, entry: dict) -> Image:
        return Image(self.registry, entry["service"], entry["tag"], entry["behaviour"], entry["error_rate"],
                     entry["latency_ms"], "sha256:" + digest)

    # --- the file ---------------------------------------------------------------------------------------------

    def _read(self) -> dict:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {"images": {}, "tags": {}}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._parse(self.path.read_bytes()))
        return self._cache[1]

    def _parse(self, raw: bytes) -> dict:
        where = f"image registry {self.path}"
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadInput(f"{where}: not UTF-8 text (a binary file?)") from None
        except ValueError as exc:
            raise BadInput(f"{where}: not JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), dict) or not isinstance(data.get("tags"), dict):
            raise BadInput(f"{where}: expected an object with 'images' and 'tags' objects")
        for digest, entry in data["images"].items():
            try:
                _validate(entry["service"], entry["tag"], entry["behaviour"], entry["error_rate"], entry["latency_ms"])
                if not re.fullmatch(r"[0-9a-f]{64}", digest):
                    raise BadInput(f"digest {digest!r} is not 64 hex digits")
            except (TypeError, KeyError) as exc:
                raise BadInput(f"{where}: image {digest[:19]!r} lacks {exc} or is not an object") from None
            except BadInput as exc:
                raise BadInput(f"{where}: image {digest[:19]!r}: {exc.message}") from None
        for tag, digest in data["tags"].items():
            if not isinstance(digest, str) or digest.removeprefix("sha256:") not in data["images"]:
                raise BadInput(f"{where}: tag {tag!r} points at {digest!r}, which is not an image here")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._cache = None
            data = self._read()
            data = {"images": dict(data["images"]), "tags": dict(data["tags"])}
            yield data
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        finally:
            os.close(fd)
