"""deploy/k8s validated offline: every resource against the Kubernetes schemas
(kubernetes-validate ships them), plus the rules a cluster operator relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"


def _resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


RESOURCES = _resources()
DEPLOYMENTS = {doc["metadata"]["name"]: doc for _, doc in RESOURCES if doc["kind"] == "Deployment"}


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in RESOURCES if doc["kind"] == kind]


def test_every_manifest_file_is_listed_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


@pytest.mark.parametrize(("name", "doc"), RESOURCES, ids=[name for name, _ in RESOURCES])
def test_resource_is_valid_against_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_resource_is_refused() -> None:
    _, web = next(item for item in RESOURCES if item[1]["kind"] == "Deployment")
    broken = {**web, "spec": {**web["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_expected_processes_are_deployed() -> None:
    assert set(DEPLOYMENTS) == {
        "checkin-web",
        "checkin-worker",
        "followup-web",
        "followup-worker",
        "analytics-web",
        "analytics-worker",
    }


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_containers_run_unprivileged_with_bounded_resources(name: str) -> None:
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)


@pytest.mark.parametrize("name", sorted(n for n in DEPLOYMENTS if n.endswith("-web")))
def test_web_processes_have_probes_and_an_autoscaler(name: str) -> None:
    (container,) = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "startupProbe" in container
    targets = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in _of_kind("HorizontalPodAutoscaler")}
    assert targets[name]["spec"]["minReplicas"] >= 2
    # The autoscaler owns the replica count; a fixed one would fight it.
    assert "replicas" not in DEPLOYMENTS[name]["spec"]


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_every_deployment_has_a_disruption_budget_that_selects_its_pods(name: str) -> None:
    labels = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]
    budgets = [
        pdb
        for pdb in _of_kind("PodDisruptionBudget")
        if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1, f"{name}: {len(budgets)} PodDisruptionBudgets select its pods"


LOOP_PROCESSES = sorted(n for n in DEPLOYMENTS if not n.endswith("-web"))
ALIVE = ["python", "-m", "turnout_common.alive"]


def _alive_command(probe: dict[str, Any]) -> list[str]:
    command: list[str] = probe.get("exec", {}).get("command", [])
    return command


@pytest.mark.parametrize("name", LOOP_PROCESSES)
def test_relays_and_workers_are_restarted_when_they_stop_beating(name: str) -> None:
    """No HTTP endpoint in these processes: their heartbeat file is the liveness probe
    (a hung loop already makes the process exit; the probe catches a wedged process)."""
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    liveness = container.get("livenessProbe")
    assert liveness is not None, f"{name}: no livenessProbe"
    command = _alive_command(liveness)
    assert command[:3] == ALIVE, command
    max_age = float(command[command.index("--max-age") + 1])
    # The file is touched every 5 s: a slow probe or a busy node must not restart a healthy process.
    assert max_age >= 30
    assert liveness["periodSeconds"] <= 60 and liveness["failureThreshold"] >= 2
    assert liveness["timeoutSeconds"] >= 3  # a Python start-up on a busy node
    # Until the loops start, no heartbeat: a startup probe (same check) holds the
    # liveness probe back for longer than the process needs to start.
    startup = container["startupProbe"]
    assert _alive_command(startup)[:3] == ALIVE
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    # The heartbeat file's directory is writable although the root filesystem is not.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "TURNOUT_HEARTBEAT_FILE" not in {e["name"] for e in container.get("env", [])}


def test_the_liveness_check_refuses_a_loop_process_without_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    (container,) = DEPLOYMENTS["checkin-worker"]["spec"]["template"]["spec"]["containers"]
    stripped = {k: v for k, v in container.items() if k != "livenessProbe"}
    monkeypatch.setitem(DEPLOYMENTS, "checkin-worker", _with_container(DEPLOYMENTS["checkin-worker"], stripped))
    with pytest.raises(AssertionError, match="no livenessProbe"):
        test_relays_and_workers_are_restarted_when_they_stop_beating("checkin-worker")


def _with_container(deployment: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    pod = {**deployment["spec"]["template"]["spec"], "containers": [container]}
    template = {**deployment["spec"]["template"], "spec": pod}
    return {**deployment, "spec": {**deployment["spec"], "template": template}}


def test_the_config_map_does_not_move_the_heartbeat_file() -> None:
    (config,) = [doc for doc in _of_kind("ConfigMap") if doc["metadata"]["name"] == "turnout-config"]
    assert "TURNOUT_HEARTBEAT_FILE" not in config["data"]
