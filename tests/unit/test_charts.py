"""The service chart (charts/taly-service), rendered and linted by the real helm binary.

Every CMS service is the one chart plus charts/taly-service/services/<name>.yaml; the
environment's values (image, IRSA role, sizing, ingress ARNs) come from the stack's
ServiceSizing, as the Pulumi program passes them. helm missing is a failure, not a skip:
`scripts/install-helm` (or `make setup`) puts it into .tools/bin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from taly_ops.adapters import helm
from taly_ops.errors import BadInput
from taly_platform.catalog import CATALOG, SERVICE_NAMES, service
from taly_platform.config import ENVIRONMENTS, ServiceSizing
from taly_platform.stackfile import load_stack

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "taly-service"
SERVICES_DIR = CHART / "services"
ACCOUNT = "123456789012"
TAG = "1.4.2"
CERT_ARN = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/0a1b2c3d-1111-2222-3333-444455556666"
WAF_ARN = f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/webacl/taly/0a1b2c3d-1111-2222-3333-444455556666"

SIZINGS = {
    "dev": ServiceSizing(),
    "prod": ServiceSizing(
        min_replicas=3, max_replicas=20, cpu_request="250m", cpu_limit="1", memory_request="256Mi", memory_limit="1Gi"
    ),
}
DATA_PORTS = {"database": 5432, "cache": 6379, "broker": 5671}
BASE_KINDS = {"Deployment", "Service", "ServiceAccount", "ConfigMap", "HorizontalPodAutoscaler",
              "PodDisruptionBudget", "NetworkPolicy"}


def service_file(name: str) -> Path:
    return SERVICES_DIR / f"{name}.yaml"


def env_values(name: str, environment: str, sizing: ServiceSizing, log_level: str = "info") -> dict[str, Any]:
    """The environment's layer of values for one service (what the Pulumi program passes)."""
    return {
        "environment": environment,
        "region": "eu-west-1",
        "image": {"repository": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/taly/{name}", "tag": TAG},
        "serviceAccount": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/taly-{environment}-{name}"},
        "sizing": sizing.model_dump(by_alias=True),
        "logLevel": log_level,
        "ingress": {"host": f"api.{environment}.taly.example", "certificateArn": CERT_ARN, "wafAclArn": WAF_ARN},
    }


def render(name: str, values: dict[str, Any], namespace: str = "taly") -> list[dict[str, Any]]:
    return helm.template(CHART, name, namespace, values, value_files=[service_file(name)])


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


@pytest.fixture(scope="session")
def helm_bin() -> str:
    try:
        return helm.helm_binary()
    except BadInput as exc:
        missing = f"{exc.message}: {exc.hint}"
    pytest.fail(missing, pytrace=False)  # a failure, never a skip: the suite needs the real helm


@pytest.fixture(scope="session")
def rendered(helm_bin: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every service in dev and prod-like sizing, rendered once for the session."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for profile, sizing in SIZINGS.items():
        started = time.perf_counter()
        for name in SERVICE_NAMES:
            out[(name, profile)] = render(name, env_values(name, profile, sizing), namespace=f"taly-{profile}")
        print(f"rendered {len(SERVICE_NAMES)} services ({profile}) in {time.perf_counter() - started:.2f} s")
    return out


CASES = [(name, profile) for profile in SIZINGS for name in SERVICE_NAMES]
IDS = [f"{name}-{profile}" for name, profile in CASES]


# --- the adapter ---------------------------------------------------------------------------


def test_missing_helm_fails_with_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: taly\n")
    monkeypatch.setenv("TALY_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(helm, "CHECKOUT_TOOLS", tmp_path / "no-tools")
    with pytest.raises(BadInput) as err:
        helm.helm_binary()
    assert "helm" in err.value.message
    assert "scripts/install-helm" in (err.value.hint or "")


def test_helm_is_found_in_the_tool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: taly\n")
    tool = tmp_path / ".tools" / "bin" / "helm"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("TALY_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert helm.helm_binary() == str(tool)


def test_the_real_helm_is_installed(helm_bin: str) -> None:
    assert Path(helm_bin).is_file()


# --- one values file per catalog service ---------------------------------------------------


def test_every_catalog_service_has_a_values_file_and_nothing_else() -> None:
    assert sorted(p.stem for p in SERVICES_DIR.glob("*.yaml")) == sorted(SERVICE_NAMES)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_values_file_agrees_with_the_catalog(name: str) -> None:
    values = yaml.safe_load(service_file(name).read_text())
    entry = service(name)
    assert values["name"] == name
    assert values["port"] == entry.port
    assert values.get("public", False) == entry.public
    assert values.get("media", "none") == entry.media
    deps = values.get("dependencies", {})
    for need in DATA_PORTS:
        assert deps.get(need, True) == getattr(entry, need), f"{name}: dependencies.{need}"
    assert values.get("ingress", {}).get("enabled", False) == entry.public


# --- helm lint --strict --------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICE_NAMES)
@pytest.mark.parametrize("profile", list(SIZINGS))
def test_lint_strict_is_clean(helm_bin: str, name: str, profile: str) -> None:
    report = helm.lint(CHART, env_values(name, profile, SIZINGS[profile]), value_files=[service_file(name)])
    assert "0 chart(s) failed" in report
    assert "[WARNING]" not in report and "[ERROR]" not in report


# --- what every service renders ------------------------------------------------------------


@pytest.mark.parametrize(("name", "profile"), CASES, ids=IDS)
def test_objects_and_labels(rendered, name: str, profile: str) -> None:
    docs = rendered[(name, profile)]
    kinds = {d["kind"] for d in docs}
    assert kinds == BASE_KINDS | ({"Ingress"} if name == "api-gateway" else set())
    for doc in docs:
        labels = doc["metadata"]["labels"]
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] == name, where
        assert labels["app.kubernetes.io/instance"] == name, where
        assert labels["app.kubernetes.io/part-of"] == "taly", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["app.kubernetes.io/version"] == TAG, where
        assert labels["helm.sh/chart"].startswith("taly-service-"), where
        assert doc["metadata"]["namespace"] == f"taly-{profile}", where


@pytest.mark.parametrize(("name", "profile"), CASES, ids=IDS)
def test_deployment(rendered, name: str, profile: str) -> None:
    docs = rendered[(name, profile)]
    sizing = SIZINGS[profile]
    entry = service(name)
    dep = one(docs, "Deployment", name)
    spec = dep["spec"]
    assert "replicas" not in spec, "the HPA owns the replica count"
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()

    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(entry.port)
    assert annotations["prometheus.io/path"] == "/metrics"

    ps = pod["spec"]
    assert ps["serviceAccountName"] == name
    assert ps["securityContext"]["runAsNonRoot"] is True
    assert ps["securityContext"]["runAsUser"] == 10001
    assert ps["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}

    spreads = {c["topologyKey"]: c for c in ps["topologySpreadConstraints"]}
    assert set(spreads) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for c in spreads.values():
        assert c["maxSkew"] == 1
        assert c["whenUnsatisfiable"] == "ScheduleAnyway"
        assert c["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]

    (container,) = ps["containers"]
    repo, _, tag = container["image"].rpartition(":")
    assert tag == TAG and tag != "latest"
    assert repo.endswith(f"/taly/{name}")
    assert container["ports"] == [{"name": "http", "containerPort": entry.port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": sizing.cpu_request, "memory": sizing.memory_request},
        "limits": {"cpu": sizing.cpu_limit, "memory": sizing.memory_limit},
    }
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}

    (tmp_mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    (tmp_volume,) = [v for v in ps["volumes"] if v["name"] == tmp_mount["name"]]
    assert "emptyDir" in tmp_volume

    env_from = container["envFrom"]
    assert {"configMapRef": {"name": f"{name}-config"}} in env_from
    assert {"secretRef": {"name": f"{name}-secrets", "optional": True}} in env_from
    config = one(docs, "ConfigMap", f"{name}-config")["data"]
    assert config["TALY_PARAMETER_PATH"] == f"/taly/{profile}/{name}/"
    assert config["TALY_SERVICE"] == name
    assert config["TALY_ENVIRONMENT"] == profile
    assert config["PORT"] == str(entry.port)


@pytest.mark.parametrize(("name", "profile"), CASES, ids=IDS)
def test_service_account_carries_the_irsa_role(rendered, name: str, profile: str) -> None:
    sa = one(rendered[(name, profile)], "ServiceAccount", name)
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        f"arn:aws:iam::{ACCOUNT}:role/taly-{profile}-{name}"
    )


@pytest.mark.parametrize(("name", "profile"), CASES, ids=IDS)
def test_service_hpa_and_pdb(rendered, name: str, profile: str) -> None:
    docs = rendered[(name, profile)]
    sizing = SIZINGS[profile]
    pod_labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]

    svc = one(docs, "Service", name)["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["selector"].items() <= pod_labels.items()
    assert svc["ports"] == [{"name": "http", "port": service(name).port, "targetPort": "http", "protocol": "TCP"}]

    hpa = one(docs, "HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (sizing.min_replicas, sizing.max_replicas)
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }

    pdb = one(docs, "PodDisruptionBudget", name)["spec"]
    # maxUnavailable 1: drains proceed even with a single replica (minAvailable 1 would block them).
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_prod_and_dev_sizing_differ_where_they_should(rendered) -> None:
    for name in SERVICE_NAMES:
        dev = one(rendered[(name, "dev")], "HorizontalPodAutoscaler")["spec"]
        prod = one(rendered[(name, "prod")], "HorizontalPodAutoscaler")["spec"]
        assert (dev["minReplicas"], dev["maxReplicas"]) == (1, 3)
        assert (prod["minReplicas"], prod["maxReplicas"]) == (3, 20)
        dev_res = one(rendered[(name, "dev")], "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]
        prod_res = one(rendered[(name, "prod")], "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert dev_res["limits"] == {"cpu": "500m", "memory": "512Mi"}
        assert prod_res["limits"] == {"cpu": "1", "memory": "1Gi"}


# --- network policies ----------------------------------------------------------------------


def _egress_ports(rule: dict[str, Any]) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


@pytest.mark.parametrize(("name", "profile"), CASES, ids=IDS)
def test_network_policy(rendered, name: str, profile: str) -> None:
    entry = service(name)
    np = one(rendered[(name, profile)], "NetworkPolicy", name)["spec"]
    assert np["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == name
    assert sorted(np["policyTypes"]) == ["Egress", "Ingress"]

    app_rules, metrics_rules = [], []
    for rule in np["ingress"]:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}], "ingress only on the service's port"
        peers = rule.get("from", [])
        if peers and all("namespaceSelector" in p for p in peers):
            metrics_rules.append(rule)
        else:
            app_rules.append(rule)
    assert len(app_rules) == 1
    if entry.public:
        assert "from" not in app_rules[0], "the public gateway takes traffic from the ALB"
    else:
        assert app_rules[0]["from"] == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "api-gateway", "app.kubernetes.io/part-of": "taly"}}}
        ]
    assert [r["from"] for r in metrics_rules] == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    ]

    egress = np["egress"]
    dns = [r for r in egress if _egress_ports(r) == {53}]
    assert len(dns) == 1 and {p["protocol"] for p in dns[0]["ports"]} == {"UDP", "TCP"}
    assert dns[0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert any(_egress_ports(r) == {443} for r in egress)
    wanted = {port for need, port in DATA_PORTS.items() if getattr(entry, need)}
    opened = set().union(*(_egress_ports(r) for r in egress)) & set(DATA_PORTS.values())
    assert opened == wanted, f"{name} reaches data ports {opened}, needs {wanted}"
    to_services = [r for r in egress if any("podSelector" in p and "namespaceSelector" not in p for p in r.get("to", []))]
    assert bool(to_services) == (name == "api-gateway"), "only the gateway calls the other services"


def test_default_deny_is_rendered_once_per_namespace_by_the_gateway(rendered) -> None:
    for profile in SIZINGS:
        denies = [
            (name, d) for name in SERVICE_NAMES for d in by_kind(rendered[(name, profile)], "NetworkPolicy")
            if d["spec"]["podSelector"] == {}
        ]
        assert [name for name, _ in denies] == ["api-gateway"]
        spec = denies[0][1]["spec"]
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        assert "ingress" not in spec and "egress" not in spec


# --- the public entry point ----------------------------------------------------------------


def test_only_the_gateway_has_an_ingress_with_waf(rendered) -> None:
    for (name, profile), docs in rendered.items():
        ingresses = by_kind(docs, "Ingress")
        if name != "api-gateway":
            assert ingresses == [], name
            continue
        (ing,) = ingresses
        a = ing["metadata"]["annotations"]
        assert a["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
        assert a["alb.ingress.kubernetes.io/target-type"] == "ip"
        assert {"HTTPS": 443} in yaml.safe_load(a["alb.ingress.kubernetes.io/listen-ports"])
        assert a["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
        assert a["alb.ingress.kubernetes.io/certificate-arn"] == CERT_ARN
        assert a["alb.ingress.kubernetes.io/wafv2-acl-arn"] == WAF_ARN
        spec = ing["spec"]
        host = f"api.{profile}.taly.example"
        assert spec["ingressClassName"] == "alb"
        assert spec["tls"] == [{"hosts": [host]}]
        (rule,) = spec["rules"]
        assert rule["host"] == host
        assert rule["http"]["paths"][0]["backend"]["service"] == {"name": name, "port": {"name": "http"}}


# --- bad values fail at render time, clearly ------------------------------------------------


def _bad(name: str, **overrides: Any) -> dict[str, Any]:
    values = env_values(name, "dev", SIZINGS["dev"])
    for dotted, value in overrides.items():
        node = values
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return values


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"image__tag": "latest"}, ["/image/tag", "'latest'"]),
        ({"sizing__minReplicas": 0}, ["/sizing/minReplicas", "minimum"]),
        ({"sizing__maxReplicas": 101}, ["/sizing/maxReplicas", "maximum"]),
        ({"sizing__minReplicas": "three"}, ["/sizing/minReplicas", "want integer"]),
        ({"port": "3000"}, ["/port", "want integer"]),
        ({"sizing__minReplicas": 5, "sizing__maxReplicas": 2}, ["sizing.minReplicas (5) must be <= sizing.maxReplicas (2)"]),
        ({"environment": "qa"}, ["/environment", "dev", "prod"]),
        ({"serviceAccount__roleArn": "taly-dev-auth"}, ["/serviceAccount/roleArn"]),
        ({"sizing__cpuLimit": 1}, ["/sizing/cpuLimit", "want string"]),
        ({"replicas": 3}, ["additional properties 'replicas' not allowed"]),
        ({"ingress__enabled": True}, ["ingress.enabled needs public: true"]),
        ({"sizing__cpuRequest": "2", "sizing__cpuLimit": "1500m"}, ["sizing.cpuRequest (2) must be <= sizing.cpuLimit (1500m)"]),
        ({"sizing__memoryRequest": "2Gi", "sizing__memoryLimit": "1536Mi"},
         ["sizing.memoryRequest (2Gi) must be <= sizing.memoryLimit (1536Mi)"]),
    ],
    ids=["tag-latest", "min-0", "max-101", "min-wrong-type", "port-wrong-type", "min-gt-max", "environment",
         "role-arn", "cpu-number", "unknown-key", "ingress-internal", "cpu-request-gt-limit", "memory-request-gt-limit"],
)
def test_bad_values_fail_with_a_clear_message(helm_bin: str, overrides: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(helm.HelmFailed) as err:
        render("auth", _bad("auth", **overrides))
    for text in expected:
        assert text in err.value.message, err.value.message
    assert err.value.stderr and "Use --debug" not in err.value.message


def test_missing_required_values_are_named(helm_bin: str) -> None:
    with pytest.raises(helm.HelmFailed) as err:
        helm.template(CHART, "auth", "taly", value_files=[service_file("auth")])
    msg = err.value.message
    assert "missing property 'environment'" in msg
    assert "'repository', 'tag'" in msg
    assert "missing property 'roleArn'" in msg


def test_gateway_ingress_needs_its_waf_acl(helm_bin: str) -> None:
    values = env_values("api-gateway", "dev", SIZINGS["dev"])
    values["ingress"]["wafAclArn"] = ""
    with pytest.raises(helm.HelmFailed) as err:
        render("api-gateway", values)
    assert "/ingress/wafAclArn" in err.value.message


def test_a_mutable_tag_in_capitals_fails_too(helm_bin: str) -> None:
    # The schema refuses "latest"; the template's own check also catches other spellings.
    values = env_values("auth", "dev", SIZINGS["dev"])
    values["image"]["tag"] = "LATEST"
    with pytest.raises(helm.HelmFailed) as err:
        render("auth", values)
    assert "image.tag \"LATEST\" is mutable" in err.value.message


# --- the real stack files and the Kubernetes API schemas -------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_service_renders_with_the_real_stack_sizing(helm_bin: str, env: str) -> None:
    cfg = load_stack(ROOT, env)
    for entry in CATALOG:
        sizing = cfg.services.sizing_for(entry.name)
        docs = render(entry.name, env_values(entry.name, env, sizing, cfg.services.log_level), cfg.services.namespace)
        hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (sizing.min_replicas, sizing.max_replicas)
        assert one(docs, "ConfigMap")["data"]["LOG_LEVEL"] == cfg.services.log_level


def _kubernetes_version() -> str:
    from kubernetes_validate import utils

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    supported = [v for v in utils.all_versions() if key(v)[:2] <= (1, 33)]
    assert supported, "kubernetes-validate supports no Kubernetes version <= 1.33"
    return max(supported, key=key)


def test_manifests_are_valid_kubernetes_objects(rendered) -> None:
    import kubernetes_validate

    version = _kubernetes_version()
    problems = []
    for (name, profile), docs in rendered.items():
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{name}/{profile} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("cpu", "memory"), [(("1", "1000m"), ("1Gi", "1024Mi")), (("250m", "0.5"), ("512Mi", "1Gi"))],
                         ids=["equal-in-other-units", "less"])
def test_requests_up_to_their_limits_render(helm_bin: str, cpu: tuple[str, str], memory: tuple[str, str]) -> None:
    values = _bad("auth", sizing__cpuRequest=cpu[0], sizing__cpuLimit=cpu[1],
                  sizing__memoryRequest=memory[0], sizing__memoryLimit=memory[1])
    container = one(render("auth", values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == cpu[0] and container["resources"]["limits"]["memory"] == memory[1]
