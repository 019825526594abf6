"""The chart's values for environment `local` (the stacks' values path, taly_platform/releases.py) and
the objects they render, against the plan's: what `taly local up` applies to the local cluster."""

from __future__ import annotations

import base64

import pytest

from taly_ops.local import estate, workloads
from taly_ops.local.context import PORT_NAMES
from taly_platform.catalog import CATALOG, SERVICE_NAMES

PORTS = {name: 20000 + i for i, name in enumerate(PORT_NAMES)}
ENDPOINTS = estate.endpoints(PORTS, {"postgres": "pg-secret", "redis": "redis-secret", "rabbitmq": "mq-secret"})
IMAGES = {s.name: f"registry.taly.local/taly/{s.name}:1.0.0@sha256:{'ab' * 32}" for s in CATALOG}


@pytest.fixture(scope="module")
def local_objects() -> list[dict]:
    return workloads.render(ENDPOINTS, IMAGES)


def of(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def test_local_values_render_two_replicas_fast_probes_and_the_registry_images(local_objects):
    assert len(of(local_objects, "Deployment")) == len(CATALOG)
    for svc in CATALOG:
        hpa = of(local_objects, "HorizontalPodAutoscaler", svc.name)[0]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 2)
        pod = of(local_objects, "Deployment", svc.name)[0]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["image"] == IMAGES[svc.name]
        assert "initialDelaySeconds" not in container["readinessProbe"]  # none: at once (a 0 Go would omit)
        assert container["readinessProbe"]["periodSeconds"] == 1
        assert pod["metadata"]["labels"]["taly.io/environment"] == "local"
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        data = of(local_objects, "ConfigMap", f"{svc.name}-config")[0]["data"]
        assert data["TALY_ENVIRONMENT"] == "local"
        assert ("DATABASE_PORT" in data) == svc.database and ("REDIS_PORT" in data) == svc.cache
        assert ("AMQP_ENDPOINT" in data) == svc.broker
        if svc.database:
            assert data["DATABASE_PORT"] == str(PORTS["postgres-primary"])
        if svc.broker:
            assert data["AMQP_ENDPOINT"] == f"amqp://127.0.0.1:{PORTS['amqp']}" and data["TALY_QUEUE"] == f"taly.{svc.name}"
        assert not any("secret" in v for v in data.values())  # passwords only in the Secrets
    assert workloads.hpa_floors(local_objects) == {name: 2 for name in SERVICE_NAMES}


def test_the_local_cluster_runs_the_objects_the_plan_shows(plans, local_objects):
    """Same values path, same chart: the dev plan's chart objects, kind for kind and name for name."""
    planned = {(r.inputs["apiVersion"], r.inputs["kind"], r.inputs["metadata"]["name"])
               for r in plans["dev"].resources if r.type.startswith("kubernetes:") and r.parent
               and r.parent.removeprefix("taly-dev-") in SERVICE_NAMES}
    local = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in local_objects}
    assert local == planned

    def paths(value, prefix=""):
        if isinstance(value, dict):
            return {p for k, v in value.items() for p in paths(v, f"{prefix}.{k}") | {f"{prefix}.{k}"}}
        if isinstance(value, list):
            return {p for v in value for p in paths(v, f"{prefix}[]")}
        return set()

    dev = next(r.inputs for r in plans["dev"].resources if r.type == "kubernetes:apps/v1:Deployment"
               and r.inputs["metadata"]["name"] == "auth")
    no_delay = ".template.spec.containers[].readinessProbe.initialDelaySeconds"  # locally none: probed at once
    assert paths(dev["spec"]) - {no_delay} == paths(of(local_objects, "Deployment", "auth")[0]["spec"])


def test_a_bad_image_reference_is_refused():
    with pytest.raises(ValueError, match="not a digest-pinned image reference"):
        workloads.split_reference("registry.taly.local/taly/auth:1.0.0")
    assert workloads.split_reference("localhost:5000/taly/auth:1.2@sha256:" + "0" * 64) == {
        "repository": "localhost:5000/taly/auth", "tag": "1.2", "digest": "sha256:" + "0" * 64}


def test_secrets_hold_each_services_credentials_only():
    found = {s["metadata"]["name"]: s for s in workloads.secrets(ENDPOINTS)}
    assert set(found) == {f"{s.name}-secrets" for s in CATALOG}
    for svc in CATALOG:
        data = {k: base64.b64decode(v).decode() for k, v in found[f"{svc.name}-secrets"]["data"].items()}
        assert (data.get("DATABASE_PASSWORD") == "pg-secret") == svc.database
        assert (data.get("REDIS_PASSWORD") == "redis-secret") == svc.cache
        assert (data.get("AMQP_PASSWORD") == "mq-secret") == svc.broker
