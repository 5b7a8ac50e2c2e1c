"""The cluster path for real: a local 2-node Ray cluster and an MLflow tracking server started by
the infra/local scripts, a sweep submitted with `ray job submit`, promotion through the server,
and a clear error when the server is unreachable. Whatever the scripts started is stopped, even
when a test fails."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from local_cluster import BIN, LocalCluster, local_cluster, sweep_command
from mlflow import MlflowClient

from tune import tracking


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("infra"), ["--workers", "1", "--dashboard"]) as c:
        yield c


def test_server_listens_on_loopback_only(cluster: LocalCluster) -> None:
    assert urlparse(cluster.mlflow).hostname == "127.0.0.1"
    pid = cluster.pid("mlflow-server")
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert command[command.index(b"--host") + 1] == b"127.0.0.1"


def test_job_submitted_sweep_runs_on_both_nodes_and_promotes_through_server(
    cluster: LocalCluster, dataset_path: Path, tmp_path: Path
) -> None:
    sweep = sweep_command(
        dataset_path,
        "cluster-sweep",
        cluster.mlflow,
        tmp_path / "shared-storage",
        trials=3,
        epochs=2,
    )
    submit = [str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard, "--", *sweep]
    result = subprocess.run(
        submit, env=cluster.env(), capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "succeeded" in result.stdout

    uri = cluster.mlflow
    experiment = MlflowClient(uri).get_experiment_by_name("cluster-sweep")
    runs = tracking.find_runs(uri, experiment.experiment_id, {tracking.ROLE: "trial"})
    assert len(runs) == 4  # 3 searched + the multichannel baseline, one run each
    assert len({r.data.tags[tracking.TRIAL_ID] for r in runs}) == 4
    nodes = {r.data.tags["madn.node"] for r in runs}
    assert nodes == {"head", "worker-1"}, nodes
    assert all(r.data.tags[tracking.OUTCOME] == "finished" for r in runs)
    # artifacts went through the server (--serve-artifacts), not to a client-side path
    assert experiment.artifact_location.startswith("mlflow-artifacts:")

    from tune.cli import main

    code = main(
        [
            "promote",
            "--experiment",
            "cluster-sweep",
            "--model-name",
            "cluster-model",
            "--tracking-uri",
            uri,
            "--min-gain",  # a 1-epoch model does not beat No MAR; this test is about the cluster
            "-1000",
        ]
    )
    assert code == 0
    champion = MlflowClient(uri).get_model_version_by_alias("cluster-model", "champion")
    assert champion.tags["decision"] == "champion"


def test_ray_client_address_runs_trials_on_both_nodes(
    cluster: LocalCluster, dataset_path: Path, tmp_path: Path
) -> None:
    assert cluster.client.startswith("ray://127.0.0.1:")
    command = sweep_command(
        dataset_path,
        "client-sweep",
        cluster.mlflow,
        tmp_path / "storage",
        trials=1,
        epochs=2,
        address=cluster.client,
    )
    result = subprocess.run(
        command, env=cluster.env(), capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:] + cluster.ray_logs("ray_client_server*")
    )
    experiment = MlflowClient(cluster.mlflow).get_experiment_by_name("client-sweep")
    runs = tracking.find_runs(cluster.mlflow, experiment.experiment_id, {tracking.ROLE: "trial"})
    assert {r.data.tags["madn.node"] for r in runs} == {"head", "worker-1"}
    assert all(r.data.tags[tracking.OUTCOME] == "finished" for r in runs)


def test_unreachable_tracking_server_fails_before_any_trial(
    dataset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from tune.cli import main

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(
        [
            "sweep",
            "--data",
            str(dataset_path),
            "--tracking-uri",
            f"http://127.0.0.1:{port}",
            "--storage",
            str(tmp_path / "storage"),
            "--trials",
            "1",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is unreachable" in err[0] and str(port) in err[0]
    assert not (tmp_path / "storage").exists()  # nothing started


def test_unreachable_ray_address_fails_at_once(
    dataset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import time

    from tune.cli import main

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    started = time.monotonic()
    code = main(
        [
            "sweep",
            "--address",
            f"ray://127.0.0.1:{port}",
            "--data",
            str(dataset_path),
            "--tracking-uri",
            uri,
            "--storage",
            str(tmp_path / "storage"),
        ]
    )
    assert code == 2 and time.monotonic() - started < 30
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("madn ")]
    assert len(ours) == 1 and "is unreachable" in ours[0] and str(port) in ours[0], ours
    experiment = MlflowClient(uri).get_experiment_by_name("madn-sweep")
    assert MlflowClient(uri).search_runs([experiment.experiment_id]) == []  # no run left behind
