"""The cluster and server configs in infra/ parse and carry the keys their tools require."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[1] / "infra"


def _load(relative: str) -> dict:
    content = yaml.safe_load((INFRA / relative).read_text())
    assert isinstance(content, dict), relative
    return content


def test_ray_cluster_yaml_has_what_ray_up_needs() -> None:
    config = _load("ray/cluster.yaml")
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type"):
        assert key in config, key
    assert config["head_node_type"] in config["available_node_types"]
    assert config["provider"]["type"]
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])
    assert any("--address" in c for c in config["worker_start_ray_commands"])
    for node in config["available_node_types"].values():
        assert "node_config" in node and "resources" in node
        assert any(name.startswith("madn-node-") for name in node["resources"])


def test_kuberay_rayjob_runs_madn_sweep() -> None:
    job = _load("k8s/rayjob-sweep.yaml")
    assert job["apiVersion"].startswith("ray.io/") and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("madn sweep --address auto")
    for flag in ("--data s3://", "--storage s3://", "--tracking-uri http"):
        assert flag in spec["entrypoint"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0"
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    workers = cluster["workerGroupSpecs"]
    assert workers and all(w["template"]["spec"]["containers"] for w in workers)


def test_mlflow_recipe_uses_postgres_s3_and_serves_artifacts() -> None:
    compose = _load("mlflow/docker-compose.yaml")
    services = compose["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    command = services["mlflow"]["command"]
    assert "--backend-store-uri postgresql://" in command
    assert "--artifacts-destination s3://" in command and "--serve-artifacts" in command
    assert all(port.startswith("127.0.0.1:") for port in services["mlflow"]["ports"])


@pytest.mark.parametrize("dockerfile", ["docker/Dockerfile", "mlflow/Dockerfile"])
def test_dockerfiles_start_from_an_image(dockerfile: str) -> None:
    lines = [ln for ln in (INFRA / dockerfile).read_text().splitlines() if ln.strip()]
    instructions = [ln for ln in lines if not ln.startswith("#")]
    assert instructions[0].startswith(("FROM", "ARG"))
    assert any(ln.startswith("FROM") for ln in instructions)


@pytest.mark.parametrize("script", sorted(p.name for p in (INFRA / "local").glob("*.sh")))
def test_local_scripts_are_valid_bash(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(INFRA / "local" / script)], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
