"""Label and field selectors as the API server parses and matches them."""

from __future__ import annotations

import pytest

from taly_ops.local.cluster.apierrors import ApiError
from taly_ops.local.cluster.selectors import (
    from_label_selector,
    parse_field_selector,
    parse_label_selector,
    selector_string,
)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("app in (web, api)", {"app": "api"}, True),
        ("app in (web,api)", {}, False),
        ("app notin (web)", {}, True),
        ("app notin (web)", {"app": "web"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
        ("app=web,tier=front", {"app": "web"}, False),
        ("app=web, tier", {"app": "web", "tier": "x"}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("n>3", {"n": "x"}, False),
        ("example.com/app=web", {"example.com/app": "web"}, True),
        ("app=", {"app": ""}, True),
    ],
)
def test_label_selectors_match(selector: str, labels: dict, expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["app in web", "app=(", "=web", "app=web,", "a b", "app=a b", "Bad Key=1",
                                 "x in (a", "n>a"])
def test_bad_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_label_selector(bad)
    assert caught.value.code == 400 and caught.value.message.startswith("unable to parse requirement")


def test_structured_selectors_print_as_upstream() -> None:
    spec = {"matchLabels": {"app": "web", "a": "1"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["y", "x"]},
                                 {"key": "gone", "operator": "DoesNotExist"}]}
    assert selector_string(spec) == "a=1,app=web,!gone,tier in (x,y)"
    assert from_label_selector(spec).matches({"app": "web", "a": "1", "tier": "x"})
    assert not from_label_selector(None).matches({})
    assert from_label_selector({}).matches({"any": "thing"})
    assert str(parse_label_selector("b=1,a in (y,x)")) == "a in (x,y),b=1"


def pod(phase: str = "Running", node: str = "") -> dict:
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": node, "hostNetwork": False},
            "status": {"phase": phase}}


def test_field_selectors() -> None:
    assert parse_field_selector("pods", "status.phase=Running").matches_object(pod())
    assert not parse_field_selector("pods", "status.phase!=Running").matches_object(pod())
    assert parse_field_selector("pods", "metadata.name==p,metadata.namespace=ns").matches_object(pod())
    assert parse_field_selector("pods", "spec.nodeName=").matches_object(pod())
    assert parse_field_selector("pods", "spec.hostNetwork=false").matches_object(pod())
    event = {"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"kind": "Pod", "name": "a,b"},
             "reason": "Killing", "type": "Normal", "source": {"component": "kubelet"}}
    assert parse_field_selector("events", r"involvedObject.name=a\,b,reason=Killing").matches_object(event)
    assert parse_field_selector("events", "source=kubelet,type=Normal").matches_object(event)


@pytest.mark.parametrize(("plural", "bad", "message"), [
    ("pods", "spec.bogus=1", "field label not supported: spec.bogus"),
    ("configmaps", "status.phase=Running", "field label not supported: status.phase"),
    ("pods", "nonsense", "invalid selector: 'nonsense'; can't understand 'nonsense'"),
])
def test_bad_field_selectors_are_400(plural: str, bad: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_field_selector(plural, bad)
    assert (caught.value.code, caught.value.message) == (400, message)
