"""Pod templates: the pod-template-hash that names a Deployment's ReplicaSets, and template equality.

Upstream hashes the Go struct (FNV-32a over a deep print of it) then writes the decimal digest with
the "safe" alphabet, so names look like `web-66b6c48dd5`. A Go struct print cannot be reproduced
here; the digest is taken over the template's canonical JSON instead: the same template always gives
the same name, and the alphabet and shape of the names are upstream's.
"""

from __future__ import annotations

import copy
import json
import struct
from typing import Any

HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: no words in names; no 0/1/3 (look like letters)


def _normalised(value: Any) -> Any:
    """Drop what Go's zero values make indistinguishable: null, "", {} and [] (apiequality.Semantic)."""
    if isinstance(value, dict):
        out = {k: _normalised(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", {}, [])}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped into the safe alphabet."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def compute_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """controller.ComputeHash: the template's digest, salted by status.collisionCount once it exists."""
    canonical = json.dumps(_normalised(template or {}), sort_keys=True, separators=(",", ":"))
    data = canonical.encode()
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0"  # 8 bytes, as upstream
    return safe_encode(str(fnv32a(data)))


def without_hash_label(template: dict[str, Any] | None) -> dict[str, Any]:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """deploymentutil.EqualIgnoreHash: the same template but for the pod-template-hash label.

    Empty values compare equal to absent ones, as Go's zero values do: a template patched back by
    `kubectl rollout undo` (which adds `creationTimestamp: null`, `resources: {}`) still matches.
    """
    return _normalised(without_hash_label(a)) == _normalised(without_hash_label(b))
