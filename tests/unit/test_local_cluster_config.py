"""The local cluster's configuration, without starting it: the kubeconfig and token, Prometheus's pod
discovery and the kube-state-metrics series the cluster process serves."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
import yaml

from taly_ops.local import kube, prometheus
from taly_ops.local.cluster import podsd, statemetrics
from taly_ops.local.context import PORT_NAMES

PORTS = {name: 20000 + i for i, name in enumerate(PORT_NAMES)}


def test_kubeconfig_and_token_are_private_and_the_official_client_reads_them(tmp_path):
    from kubernetes import config

    kube.prepare(tmp_path, PORTS)
    for path in (kube.token_path(tmp_path), kube.kubeconfig_path(tmp_path)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = kube.token_path(tmp_path).read_text()
    assert len(token) == 64
    contexts, current = config.list_kube_config_contexts(config_file=str(kube.kubeconfig_path(tmp_path)))
    assert [c["name"] for c in contexts] == ["taly-local"] and current["context"]["namespace"] == "taly"
    client = config.new_client_from_config(config_file=str(kube.kubeconfig_path(tmp_path)), context="taly-local")
    assert client.configuration.host == f"https://127.0.0.1:{PORTS['kube-apiserver']}"  # kubectl sends tokens over TLS only
    assert client.configuration.ssl_ca_cert == str(tmp_path / "cluster" / "ca.crt")
    assert client.configuration.api_key["BearerToken"] == f"Bearer {token}"
    ca = (tmp_path / "cluster" / "ca.crt").read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "cluster" / "server.key").st_mode) == 0o600
    kube.prepare(tmp_path, PORTS)  # again (a restart): the same token and certificates
    assert kube.token_path(tmp_path).read_text() == token and (tmp_path / "cluster" / "ca.crt").read_bytes() == ca


def test_the_cluster_certificate_is_verified_by_its_ca(tmp_path):
    """What kubectl and the Python client check: the server certificate chains to the kubeconfig's CA, for 127.0.0.1."""
    import socket
    import ssl
    import threading

    from taly_ops.local import tls

    ca, cert, key = tls.write_cluster_certificates(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.recv(1)

    threading.Thread(target=serve, daemon=True).start()
    client_ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        assert conn.getpeercert()["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))
        conn.send(b"x")
    listener.close()


def test_prometheus_config_discovers_pods_through_the_cluster(tmp_path):
    """promtool (Prometheus's own checker) accepts the config; the pods job is role-pod discovery over HTTP."""
    kube.prepare(tmp_path, PORTS)
    cfg = prometheus.config(PORTS, tmp_path)
    pods = next(j for j in cfg["scrape_configs"] if j["job_name"] == "kubernetes-pods")
    sd = pods["http_sd_configs"][0]  # Debian's Prometheus has no kubernetes_sd_configs: see cluster/podsd.py
    assert sd["url"] == f"http://127.0.0.1:{PORTS['kube-state-metrics']}/sd/pods"
    assert sd["authorization"]["credentials_file"] == str(kube.token_path(tmp_path))
    assert any(j["job_name"] == "kube-state-metrics" for j in cfg["scrape_configs"])
    cfg["rule_files"] = []  # checked by tests/alerts
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_state_metrics_follow_kube_state_metrics_names():
    pod = {"metadata": {"name": "auth-6d4b7c9f8-x2k4p", "namespace": "taly", "uid": "u1"},
           "spec": {"containers": [{"name": "auth", "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}]},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "auth", "restartCount": 3}]}}
    deployment = {"metadata": {"name": "auth", "namespace": "taly", "generation": 2},
                  "spec": {"replicas": 2}, "status": {"availableReplicas": 2, "observedGeneration": 2}}
    text = statemetrics.render(lambda plural: {"pods": [pod], "deployments": [deployment]}[plural])
    assert ('kube_pod_container_status_restarts_total{namespace="taly",pod="auth-6d4b7c9f8-x2k4p",uid="u1",'
            'container="auth"} 3') in text
    assert 'resource="cpu",unit="core"} 0.5' in text
    assert 'resource="memory",unit="byte"} 268435456' in text
    assert 'kube_pod_status_ready{namespace="taly",pod="auth-6d4b7c9f8-x2k4p",uid="u1",condition="true"} 1' in text
    assert 'kube_deployment_status_replicas_available{namespace="taly",deployment="auth"} 2' in text
    assert statemetrics.quantity("1.5") == 1.5 and statemetrics.quantity("12x") is None


def test_pod_discovery_gives_kubernetes_sd_targets_and_labels():
    pod = {"metadata": {"name": "auth-6d4b7c9f8-x2k4p", "namespace": "taly", "uid": "u1",
                        "labels": {"app.kubernetes.io/name": "auth", "pod-template-hash": "6d4b7c9f8"},
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "3000"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "auth-6d4b7c9f8", "controller": True}]},
           "spec": {"containers": [{"name": "auth", "image": "r/taly/auth:1@sha256:00",
                                    "ports": [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]}]},
           "status": {"podIP": "127.0.3.7", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    unplaced = {"metadata": {"name": "auth-pending", "namespace": "taly"}, "spec": pod["spec"], "status": {}}
    groups = podsd.target_groups([pod, unplaced])
    assert len(groups) == 1 and groups[0]["targets"] == ["127.0.3.7:3000"]
    labels = groups[0]["labels"]
    assert labels["__meta_kubernetes_namespace"] == "taly"
    assert labels["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] == "true"
    assert labels["__meta_kubernetes_pod_annotationpresent_prometheus_io_port"] == "true"
    assert labels["__meta_kubernetes_pod_label_app_kubernetes_io_name"] == "auth"
    assert labels["__meta_kubernetes_pod_ready"] == "true"
    assert labels["__meta_kubernetes_pod_controller_kind"] == "ReplicaSet"
    assert labels["__meta_kubernetes_pod_container_port_number"] == "3000"


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port 0 is not a TCP port"),
    (["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token: No such file or directory"),
    (["--tls-cert", "CERT"], "--tls-cert and --tls-key go together"),
    (["--metrics-port", "70000"], "--metrics-port 70000 is not a TCP port"),
])
def test_the_cluster_process_refuses_bad_arguments_in_one_line(tmp_path, args, message):
    import sys

    token = tmp_path / "token"
    token.write_text("t")
    base = {"--dir": str(tmp_path), "--port": "6443", "--token-file": str(token), "--images": str(tmp_path / "i.json")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value.replace("CERT", str(token))
    argv = [a for pair in base.items() for a in pair]
    done = subprocess.run([sys.executable, "-m", "taly_ops.local.cluster", *argv], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and done.stderr == f"error: {message}\n", done.stderr
    assert not (tmp_path / "ready").exists()
