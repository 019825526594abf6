"""`helm template` for the offline plan, each distinct rendering run once and then reused.

A plan renders every service's chart in every environment: 30 runs of the real helm binary for
`--env all`, a third of a plan's CPU. Their output depends only on the chart's files, the values,
the release, the namespace, the Kubernetes version and the helm binary, so it is kept under that
digest: change any of them and helm runs again. The cache is `$TALY_CACHE_DIR/helm-template`,
else `$XDG_CACHE_HOME/taly/helm-template`, else `~/.cache/taly/helm-template`; delete it at will.
A cache entry that cannot be read is a miss, and a cache that cannot be written is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..adapters import helm


def cache_dir() -> Path:
    if base := os.environ.get("TALY_CACHE_DIR"):
        return Path(base) / "helm-template"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "taly" / "helm-template"


def _digest(chart: Path, release: str, namespace: str | None, values: dict[str, Any], kube_version: str | None) -> str:
    binary = Path(helm.helm_binary())
    stat = binary.stat()
    h = hashlib.sha256()
    h.update(json.dumps([str(binary), stat.st_size, stat.st_mtime_ns, release, namespace, kube_version, values],
                        sort_keys=True, default=str).encode())
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(chart)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def template(chart: Path, release: str, namespace: str | None, values: dict[str, Any],
             kube_version: str | None = None, gate: AbstractContextManager[Any] | None = None) -> list[dict[str, Any]]:
    """helm.template's objects for this chart and these values: from the cache, or from helm (then kept).

    `gate` is held while helm runs (not while the cache is read or written).
    """
    key = _digest(chart, release, namespace, values, kube_version)
    entry = cache_dir() / f"{key}.json"
    try:
        return json.loads(entry.read_text())
    except (OSError, ValueError):
        pass
    objects = helm.template(chart, release, namespace, values, kube_version=kube_version, gate=gate)
    try:
        text = json.dumps(objects)
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, entry)  # readers see the whole entry or none
    except (OSError, TypeError, ValueError):
        pass  # a read-only home, or a value JSON cannot hold: render again next time
    return objects
