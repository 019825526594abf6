"""The local image registry: digest-pinned references, resolution rules, the file's lock and its bad contents."""

from __future__ import annotations

import json
import re
import threading

import pytest

from taly_ops.errors import BadInput
from taly_ops.local.cluster.images import REGISTRY, ImageRegistry

REF = re.compile(rf"^{re.escape(REGISTRY)}/taly/auth:1\.4\.2@sha256:[0-9a-f]{{64}}$")


def test_push_returns_a_digest_pinned_reference_that_resolves(tmp_path):
    reg = ImageRegistry(tmp_path / "images.json")
    ref = reg.push("auth", "1.4.2", behaviour="healthy", error_rate=0.02, latency_ms=40)
    assert REF.match(ref), ref
    image = reg.resolve(ref)
    assert (image.service, image.tag, image.behaviour, image.error_rate, image.latency_ms) == \
        ("auth", "1.4.2", "healthy", 0.02, 40)
    assert image.reference == ref
    assert image.image_id == f"{REGISTRY}/taly/auth@{ref.split('@')[1]}"


def test_the_digest_is_derived_from_what_the_image_is(tmp_path):
    a = ImageRegistry(tmp_path / "a.json")
    b = ImageRegistry(tmp_path / "b.json")
    assert a.push("auth", "1.0") == b.push("auth", "1.0")
    assert a.push("auth", "1.0", behaviour="crash") != a.push("auth", "1.0")
    assert a.push("auth", "1.1").split("@")[1] != a.push("auth", "1.0").split("@")[1]


def test_a_tag_points_at_its_last_push_and_old_digests_stay_pullable(tmp_path):
    reg = ImageRegistry(tmp_path / "images.json")
    good = reg.push("auth", "2.0")
    bad = reg.push("auth", "2.0", behaviour="crash")
    assert reg.resolve(f"{REGISTRY}/taly/auth:2.0").behaviour == "crash"   # by tag: what it points to now
    assert reg.resolve(good).behaviour == "healthy"                          # by digest: that image
    assert reg.resolve(bad).behaviour == "crash"
    assert len(reg.list()) == 2


def test_what_cannot_be_pulled_resolves_to_none(tmp_path):
    reg = ImageRegistry(tmp_path / "images.json")
    ref = reg.push("auth", "1.0")
    digest = ref.split("@")[1]
    assert reg.resolve(f"{REGISTRY}/taly/auth:9.9") is None                   # unknown tag
    assert reg.resolve(f"{REGISTRY}/taly/auth:1.0@sha256:{'0' * 64}") is None  # unknown digest
    assert reg.resolve(f"{REGISTRY}/taly/users:1.0@{digest}") is None          # digest of another repository
    assert reg.resolve(f"other.registry/taly/auth:1.0@{digest}") is None
    assert reg.resolve(f"{REGISTRY}/taly/auth") is None                        # :latest, never pushed here
    assert reg.resolve("not a reference") is None
    assert reg.resolve("") is None
    assert ImageRegistry(tmp_path / "missing.json").resolve(ref) is None


def test_a_digest_reference_ignores_its_tag_as_containerd_does(tmp_path):
    reg = ImageRegistry(tmp_path / "images.json")
    digest = reg.push("auth", "1.0").split("@")[1]
    assert reg.resolve(f"{REGISTRY}/taly/auth:whatever@{digest}").tag == "1.0"
    assert reg.resolve(f"{REGISTRY}/taly/auth@{digest}").tag == "1.0"


@pytest.mark.parametrize("kwargs, word", [
    ({"service": "Auth"}, "DNS label"), ({"tag": "has space"}, "tag"), ({"behaviour": "flaky"}, "behaviour"),
    ({"error_rate": 1.5}, "error rate"), ({"error_rate": True}, "error rate"), ({"latency_ms": -1}, "latency"),
    ({"latency_ms": 2.5}, "latency"),
])
def test_push_refuses_bad_images_and_changes_nothing(tmp_path, kwargs, word):
    path = tmp_path / "images.json"
    reg = ImageRegistry(path)
    with pytest.raises(BadInput, match=word):
        reg.push(**{"service": "auth", "tag": "1.0", **kwargs})
    assert not path.exists()


@pytest.mark.parametrize("content, words", [
    (b"{not json", "not JSON"), (b"\xff\xfe\x00", "not UTF-8"), (b"[]", "'images' and 'tags'"),
    (b'{"images": {"abc": {}}, "tags": {}}', "lacks"),
    (json.dumps({"images": {"a" * 64: {"service": "auth", "tag": "1", "behaviour": "odd", "error_rate": 0,
                                        "latency_ms": 0}}, "tags": {}}).encode(), "behaviour"),
    (b'{"images": {}, "tags": {"x:1": "sha256:00"}}', "not an image here"),
])
def test_a_damaged_file_is_one_clear_error_naming_it(tmp_path, content, words):
    path = tmp_path / "images.json"
    path.write_bytes(content)
    reg = ImageRegistry(path)
    with pytest.raises(BadInput) as err:
        reg.resolve(f"{REGISTRY}/taly/auth:1.0")
    assert str(path) in err.value.message and words in err.value.message
    with pytest.raises(BadInput):
        reg.push("auth", "1.0")
    assert path.read_bytes() == content


def test_pushes_from_many_threads_and_registries_are_all_kept(tmp_path):
    path = tmp_path / "images.json"
    refs: list[str] = []

    def push(i: int) -> None:
        refs.append(ImageRegistry(path).push("auth", f"1.{i}"))

    threads = [threading.Thread(target=push, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = ImageRegistry(path)
    assert all(reader.resolve(r) is not None for r in refs)
    assert len(reader.tags()) == 20


def test_a_reader_sees_pushes_made_by_another_registry_object(tmp_path):
    path = tmp_path / "images.json"
    reader, writer = ImageRegistry(path), ImageRegistry(path)
    assert reader.resolve(f"{REGISTRY}/taly/auth:1.0") is None
    writer.push("auth", "1.0")
    assert reader.resolve(f"{REGISTRY}/taly/auth:1.0").tag == "1.0"
