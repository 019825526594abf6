"""A container's environment as the kubelet resolves it (envFrom, env, valueFrom, $(VAR) expansion)."""

from __future__ import annotations

import base64

import pytest

from taly_ops.local.cluster.podenv import EnvError, expand, resolve

B64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731

OBJECTS = {
    ("configmaps", "taly", "auth-config"): {"metadata": {"name": "auth-config"},
                                           "data": {"PORT": "3000", "LOG_LEVEL": "info", "bad-name!": "x"}},
    ("secrets", "taly", "auth-secrets"): {"metadata": {"name": "auth-secrets"},
                                         "data": {"REDIS_PASSWORD": B64("s3cret"), "PORT": B64("4000")}},
    ("secrets", "taly", "broken"): {"metadata": {"name": "broken"}, "data": {"X": "%%%"}},
}
POD = {"metadata": {"name": "auth-7d9f-abcde", "namespace": "taly", "uid": "u-1",
                    "labels": {"app.kubernetes.io/name": "auth"}, "annotations": {"a": "b"}},
       "spec": {"serviceAccountName": "auth"}}


def lookup(plural, namespace, name):
    return OBJECTS.get((plural, namespace, name))


def env_of(container):
    return resolve(POD, container, lookup, "127.0.20.7", "127.0.0.1")


def test_env_from_then_env_later_sources_win_and_invalid_names_are_skipped():
    env = env_of({"envFrom": [{"configMapRef": {"name": "auth-config"}}, {"secretRef": {"name": "auth-secrets"}}],
                  "env": [{"name": "LOG_LEVEL", "value": "debug"}]})
    assert env == {"PORT": "4000", "LOG_LEVEL": "debug", "REDIS_PASSWORD": "s3cret"}


def test_prefix_and_optional_sources():
    env = env_of({"envFrom": [{"configMapRef": {"name": "auth-config"}, "prefix": "CM_"},
                              {"secretRef": {"name": "missing", "optional": True}}]})
    assert env == {"CM_PORT": "3000", "CM_LOG_LEVEL": "info"}


def test_value_from_config_map_secret_and_fields():
    env = env_of({"env": [
        {"name": "PORT", "valueFrom": {"configMapKeyRef": {"name": "auth-config", "key": "PORT"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "auth-secrets", "key": "REDIS_PASSWORD"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/name']"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "auth-config", "key": "NOPE", "optional": True}}},
    ]})
    assert env == {"PORT": "3000", "PW": "s3cret", "POD": "auth-7d9f-abcde", "NS": "taly", "IP": "127.0.20.7",
                   "HOST": "127.0.0.1", "APP": "auth", "SA": "auth"}


def test_dependent_variables_expand_as_kubernetes_does():
    env = env_of({"env": [{"name": "HOST", "value": "db"}, {"name": "URL", "value": "pg://$(HOST):$(PORT)/$$(HOST)"},
                          {"name": "PORT", "value": "5432"}]})
    assert env["URL"] == "pg://db:$(PORT)/$(HOST)"   # PORT defined after URL: kept as written
    assert expand("$(A)-$(B)", {"A": "1"}) == "1-$(B)"


@pytest.mark.parametrize("container, message", [
    ({"envFrom": [{"configMapRef": {"name": "nope"}}]}, 'configmap "nope" not found'),
    ({"envFrom": [{"secretRef": {"name": "nope"}}]}, 'secret "nope" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "auth-config", "key": "NOPE"}}}]},
     "couldn't find key NOPE in ConfigMap taly/auth-config"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "auth-secrets", "key": "NOPE"}}}]},
     "couldn't find key NOPE in Secret taly/auth-secrets"),
    ({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}}]}, "unsupported fieldRef"),
    ({"env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}, "not modelled"),
    ({"envFrom": [{"secretRef": {"name": "broken"}}]}, "not base64"),
])
def test_what_cannot_be_resolved_is_an_env_error_worded_as_the_kubelet_does(container, message):
    with pytest.raises(EnvError, match=message.replace("(", r"\(").replace("$", r"\$")):
        env_of(container)
