"""The offline plan's `helm template` cache: the real helm renders each distinct input once."""

from __future__ import annotations

from pathlib import Path

import pytest

from taly_ops.offline import helm_cache


@pytest.fixture()
def chart(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("TALY_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "chart"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (root / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  x: {{ .Values.x | quote }}\n")
    return root


def _entries() -> list[Path]:
    return sorted(helm_cache.cache_dir().glob("*.json"))


def test_a_rendering_is_kept_and_reused(chart):
    first = helm_cache.template(chart, "one", "taly", {"x": "a"})
    assert first[0]["data"] == {"x": "a"}
    [entry] = _entries()
    entry.write_text('[{"kind": "FromTheCache"}]')  # a hit returns the entry, without running helm
    assert helm_cache.template(chart, "one", "taly", {"x": "a"}) == [{"kind": "FromTheCache"}]


@pytest.mark.parametrize("change", ["values", "release", "namespace", "template", "new file"])
def test_any_change_of_input_renders_again(chart, change):
    helm_cache.template(chart, "one", "taly", {"x": "a"})
    [entry] = _entries()
    entry.write_text('[{"kind": "Stale"}]')
    args = {"release": "one", "namespace": "taly", "values": {"x": "a"}}
    if change == "values":
        args["values"] = {"x": "b"}
    elif change == "release":
        args["release"] = "two"
    elif change == "namespace":
        args["namespace"] = "other"
    elif change == "template":
        path = chart / "templates" / "cm.yaml"
        path.write_text(path.read_text().replace("x:", "y:"))
    else:
        (chart / "templates" / "NOTES.txt").write_text("hello\n")
    objects = helm_cache.template(chart, args["release"], args["namespace"], args["values"])
    assert objects[0]["kind"] == "ConfigMap"
    assert len(_entries()) == 2


def test_an_unreadable_entry_is_a_miss(chart):
    helm_cache.template(chart, "one", "taly", {"x": "a"})
    [entry] = _entries()
    entry.write_text('[{"kind": ')  # truncated
    assert helm_cache.template(chart, "one", "taly", {"x": "a"})[0]["kind"] == "ConfigMap"
    assert helm_cache.template(chart, "one", "taly", {"x": "a"})[0]["kind"] == "ConfigMap"  # rewritten whole


def test_an_unwritable_cache_still_renders(chart, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("TALY_CACHE_DIR", str(blocker))
    assert helm_cache.template(chart, "one", "taly", {"x": "a"})[0]["kind"] == "ConfigMap"
