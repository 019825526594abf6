"""PATCH as the API server applies it: JSON Patch, merge patch, and strategic merge patch with kubectl's directives."""

from __future__ import annotations

import pytest

from taly_ops.local.cluster import patch
from taly_ops.local.cluster.apierrors import ApiError
from taly_ops.local.cluster.schema import for_kind

DEPLOYMENT = for_kind("apps/v1", "Deployment")


def deployment(containers: list[dict], **spec) -> dict:
    return {"metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
            "spec": {"replicas": 2, **spec, "template": {"spec": {"containers": containers}}}}


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_strategic_merges_containers_env_and_ports_by_their_keys() -> None:
    original = deployment([
        {"name": "app", "image": "web:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "side:1"},
    ])
    change = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "web:2", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}],
         "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}]},
    ]}}}}
    merged = patch.strategic(original, change, DEPLOYMENT)
    app, side = containers(merged)
    assert app["image"] == "web:2" and side == {"name": "side", "image": "side:1"}
    assert app["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]
    assert app["ports"] == [{"containerPort": 80, "name": "http"}, {"containerPort": 9090}]
    assert containers(original)[0]["image"] == "web:1"  # the original is untouched


def test_strategic_replaces_lists_without_a_merge_strategy_and_merges_sets() -> None:
    original = deployment([{"name": "app", "image": "x", "args": ["a", "b"]}])
    change = {"metadata": {"finalizers": ["c", "a"]},
              "spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["z"]}]}}}}
    merged = patch.strategic(original, change, DEPLOYMENT)
    assert containers(merged)[0]["args"] == ["z"]
    assert merged["metadata"]["finalizers"] == ["a", "b", "c"]


def test_strategic_directives_kubectl_apply_sends() -> None:
    original = deployment([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "c", "image": "c"}],
                          strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}})
    change = {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"app": None, "tier": "x"}},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "d"}],
                "containers": [{"name": "b", "$patch": "delete"}, {"name": "d", "image": "d"}],
            }},
        },
    }
    merged = patch.strategic(original, change, DEPLOYMENT)
    assert merged["metadata"]["finalizers"] == ["b"]
    assert merged["metadata"]["labels"] == {"tier": "x"}
    assert merged["spec"]["strategy"] == {"type": "Recreate"}
    assert [c["name"] for c in containers(merged)] == ["c", "a", "d"]


def test_strategic_replace_directives() -> None:
    original = deployment([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    as_list = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "z"}]}}}}
    assert containers(patch.strategic(original, as_list, DEPLOYMENT)) == [{"name": "z", "image": "z"}]
    as_map = {"metadata": {"labels": {"$patch": "replace", "only": "this"}}}
    assert patch.strategic(original, as_map, DEPLOYMENT)["metadata"]["labels"] == {"only": "this"}
    delete = {"spec": {"template": {"$patch": "delete"}}}
    assert "template" not in patch.strategic(original, delete, DEPLOYMENT)["spec"]


def test_strategic_replaces_a_map_whose_strategy_is_replace() -> None:
    pdb = {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"a": "1", "b": "2"}}}}
    change = {"spec": {"selector": {"matchLabels": {"c": "3"}}}}
    merged = patch.strategic(pdb, change, for_kind("policy/v1", "PodDisruptionBudget"))
    assert merged["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"c": "3"}}}


def test_strategic_keeps_server_only_elements_where_they_were() -> None:
    # upstream's mergeSortedSlice: a server-only element goes before a listed one that followed it
    original = deployment([{"name": "a", "image": "a"}, {"name": "injected", "image": "i"}, {"name": "b", "image": "b"}])
    change = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}}}
    assert [c["name"] for c in containers(patch.strategic(original, change, DEPLOYMENT))] == ["injected", "b", "a"]


@pytest.mark.parametrize(("change", "code"), [
    ({"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}}, 422),
    ({"metadata": {"$patch": "explode"}}, 400),
    ([{"op": "add"}], 400),
])
def test_strategic_refusals(change, code: int) -> None:
    with pytest.raises(ApiError) as caught:
        patch.strategic(deployment([{"name": "a", "image": "a"}]), change, DEPLOYMENT)
    assert caught.value.code == code


def test_merge_patch_rfc7386() -> None:
    original = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert patch.merge_patch(original, {"a": {"b": None, "c": [3]}, "e": {"f": None, "g": 1}}) == {
        "a": {"c": [3]}, "d": 1, "e": {"g": 1}}
    assert patch.merge_patch(original, ["x"]) == ["x"]


def test_json_patch() -> None:
    original = deployment([{"name": "a", "image": "a"}])
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 5},
           {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "b", "image": "b"}},
           {"op": "remove", "path": "/metadata/labels/app"}]
    patched = patch.json_patch(original, ops)
    assert patched["spec"]["replicas"] == 5 and len(containers(patched)) == 2 and patched["metadata"]["labels"] == {}
    with pytest.raises(ApiError) as caught:
        patch.json_patch(original, [{"op": "remove", "path": "/spec/nothing"}])
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")
    with pytest.raises(ApiError) as caught:
        patch.json_patch(original, [{"op": "fly", "path": "/spec"}])
    assert caught.value.code == 400


def test_unknown_patch_type_is_415() -> None:
    with pytest.raises(ApiError) as caught:
        patch.apply("application/apply-patch+yaml", {}, {}, DEPLOYMENT)
    assert caught.value.code == 415 and "application/strategic-merge-patch+json" in caught.value.message
