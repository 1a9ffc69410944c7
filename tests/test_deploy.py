"""deploy/: the compose file against the Compose specification, the systemd unit with systemd-analyze, the
Kubernetes manifests against Kubernetes's schemas, generated manifests up to date, and the health check
following the configured port."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from prometheus_client import CollectorRegistry

from monitor.config import load, validate
from monitor.exporters.http import MetricsServer
from monitor.healthcheck import main as healthcheck
from tests.servers.dovecot import free_port
from tests.servers.promtool import Promtool

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
UNIT = DEPLOY / "systemd" / "replywatch.service"
KUBE = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30"
HARDENING = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "StateDirectory": "replywatch",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "MemoryDenyWriteExecute": "yes",
}


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "schemas" / "compose-spec.json").read_text())
    compose = yaml.safe_load(COMPOSE.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)
    )
    assert errors == []
    assert set(compose["services"]) == {"replywatch", "prometheus", "alertmanager", "grafana"}
    # Every file the services mount from the repository exists (replywatch.yaml: the user's copy).
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = COMPOSE.parent / source
                if path.name == "replywatch.yaml":
                    path = path.with_name("replywatch.yaml.example")
                assert path.exists(), volume


def test_compose_and_kubernetes_configs_are_valid_replywatch_configs() -> None:
    compose_config = load(DEPLOY / "compose" / "replywatch.yaml.example", check_secrets=False).config
    assert compose_config.http.listen == "0.0.0.0:9687"  # reachable from the Prometheus container
    configmap = yaml.safe_load((KUBE / "configmap.yaml").read_text())
    kube_config = validate(yaml.safe_load(configmap["data"]["replywatch.yaml"]), check_secrets=False).config
    assert kube_config.http.port == 9687


def unit_settings() -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), value.strip())
    return settings


def test_systemd_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    settings = unit_settings()
    for key, value in HARDENING.items():
        assert settings.get(key) == value, key
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # where available: systemd-analyze is part of systemd, not of every CI image
    # verify checks that ExecStart exists: point it at the replywatch this test runs from.
    installed = Path(sys.executable).with_name("replywatch")
    unit = tmp_path / "replywatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/replywatch/bin/replywatch", str(installed)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "replywatch.service" in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


def kube_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(doc for doc in yaml.safe_load_all((KUBE / name).read_text()) if doc)
    return docs


def test_kubernetes_manifests_follow_the_kubernetes_schemas() -> None:
    kinds = []
    for doc in kube_documents():
        kinds.append(doc["kind"])
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator kinds: checked below
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert {"Deployment", "Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds)


def test_kubernetes_deployment_service_and_monitor_agree() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in kube_documents()}
    deployment = docs[("Deployment", "replywatch")]["spec"]["template"]
    container = deployment["spec"]["containers"][0]
    assert container["ports"][0] == {"name": "http", "containerPort": 9687, "protocol": "TCP"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = docs[("Service", "replywatch")]["spec"]
    assert service["selector"] == deployment["metadata"]["labels"]
    monitor = docs[("ServiceMonitor", "replywatch")]["spec"]
    assert monitor["endpoints"][0]["port"] == service["ports"][0]["name"]
    dashboards = [
        d
        for (kind, _), d in docs.items()
        if kind == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]
    ]
    assert len(dashboards) == len(list((ROOT / "config" / "grafana" / "dashboards").glob("*.json")))


def test_prometheus_rule_groups_pass_promtool(tmp_path: Path) -> None:
    rule = next(d for d in kube_documents() if d["kind"] == "PrometheusRule")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = Promtool.find().check_rules(path)
    assert result.returncode == 0, result.describe()


def test_generated_manifests_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("replywatch_kube_render", KUBE / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, render in module.RENDERED.items():
        assert (KUBE / name).read_text() == render(), (
            f"run: uv run python deploy/kubernetes/render.py ({name})"
        )


def test_dockerfile_health_check_runs_the_port_following_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and '"-m", "monitor.healthcheck"' in dockerfile
    assert "9687/-/healthy" not in dockerfile


def test_health_check_follows_the_configured_port(tmp_path: Path) -> None:
    port = free_port()
    server = MetricsServer("127.0.0.1", port, CollectorRegistry(), lambda: True)
    config = tmp_path / "replywatch.yaml"
    config.write_text(f'http: {{listen: "0.0.0.0:{port}"}}\n')
    server.start()
    try:
        assert healthcheck([str(config)]) == 0
        config.write_text(f'http: {{listen: "127.0.0.1:{free_port()}"}}\n')  # nothing listens there
        assert healthcheck([str(config)]) == 1
    finally:
        server.stop()
    assert healthcheck([str(tmp_path / "missing.yaml")]) == 1
