"""The cluster path for real, and its faults: a local 2-node Ray cluster and an MLflow tracking
server started by the infra/local scripts, exactly as a user starts them. On it:

- a sweep submitted with `ray job submit` runs trials on both nodes and promotes through the
  server; a sweep driven through Ray Client does the same;
- the tracking server goes away for a while mid-sweep: trials retry their logging, nothing is lost;
- the driver is stopped with `ray job stop` (SIGTERM): the sweep saves its state and a resubmitted
  `madn sweep --resume` finishes it without re-running finished trials;
- a worker node dies mid-sweep: its trial is retried from its last checkpoint on the head, and
  every trial keeps exactly one MLflow run;
- an unreachable tracking server or Ray address is one clear line at once.

One cluster serves the whole module (starting and stopping one costs about a minute on 2 cores).
Each test drives a tiny sweep (32 px, width 8) and then reads MLflow. The node-kill test comes
last in the file: it leaves the cluster without its worker. Whatever the scripts started is
stopped, even when a test fails.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from local_cluster import (
    BIN,
    LocalCluster,
    kill_session,
    local_cluster,
    run_script,
    sweep_command,
    wait_until,
)
from mlflow import MlflowClient

from tune import tracking

# The head notices a dead node after 3 missed 1-s health checks instead of Ray's default ~15 s.
FAST_NODE_DEATH = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    state = tmp_path_factory.mktemp("infra")
    with local_cluster(state, ["--workers", "1", "--dashboard"], extra=FAST_NODE_DEATH) as c:
        yield c


def _trial_runs(uri: str, experiment: str) -> dict[str, Any]:
    """Trial runs of `experiment` by Tune trial id ({} before the experiment exists). Fails the
    test if a trial has more than one run."""
    found = MlflowClient(uri).get_experiment_by_name(experiment)
    if found is None:
        return {}
    runs = tracking.find_runs(uri, found.experiment_id, {tracking.ROLE: "trial"})
    by_trial = {r.data.tags[tracking.TRIAL_ID]: r for r in runs}
    assert len(by_trial) == len(runs), "a trial has more than one MLflow run"
    return by_trial


def _epoch_steps(uri: str, run_id: str, metric: str = "epoch") -> list[int]:
    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, metric))


def _start_driver(
    cluster: LocalCluster, data: Path, name: str, epochs: int, folder: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """`madn sweep` (one searched trial + the baseline) driven from here on the cluster; the
    process and its log file."""
    command = sweep_command(
        data,
        name,
        cluster.mlflow,
        folder / "storage",
        trials=1,
        epochs=epochs,
        address=cluster.address,
    )
    log = folder / "driver.log"
    driver = subprocess.Popen(
        command,
        env=cluster.env(),
        cwd=folder,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return driver, log


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


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
        epochs=1,
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
        epochs=1,
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


def test_tracking_server_outage_mid_sweep_loses_nothing(
    cluster: LocalCluster, dataset_path: Path, tmp_path: Path
) -> None:
    uri, epochs = cluster.mlflow, 4
    driver, log = _start_driver(cluster, dataset_path, "outage", epochs, tmp_path)
    try:

        def first_epoch_logged() -> bool:
            runs = _trial_runs(uri, "outage")
            return any("epoch" in r.data.metrics for r in runs.values())

        wait_until(
            first_epoch_logged, 240, "a trial logged its first epoch", lambda: driver.poll() is None
        )
        running = _trial_runs(uri, "outage")
        assert not any(tracking.OUTCOME in r.data.tags for r in running.values())
        port = uri.rsplit(":", 1)[1]
        run_script("stop-mlflow-server.sh", cluster.state)
        outage_started = time.time()
        time.sleep(8)
        assert driver.poll() is None, "the sweep died while the tracking server was down"
        run_script("start-mlflow-server.sh", cluster.state, "--port", port)
        outage_ended = time.time()
        assert driver.wait(timeout=420) == 0, _tail(log)
    finally:
        if driver.poll() is None:
            driver.kill()

    runs = _trial_runs(uri, "outage")
    assert len(runs) == 2  # the searched trial and the multichannel baseline
    client = MlflowClient(uri)
    straddled = False
    for run in runs.values():
        assert run.data.tags[tracking.OUTCOME] == "finished", run.data.tags
        for metric in ("epoch", "val/score"):
            assert set(_epoch_steps(uri, run.info.run_id, metric)) == set(range(1, epochs + 1))
        # each epoch's metrics carry the time the trial logged them: a trial that was training
        # when the server went away logged one epoch before the outage and the next only after
        # it, its uploads having waited (retried) meanwhile
        logged = sorted(
            m.timestamp / 1000 for m in client.get_metric_history(run.info.run_id, "epoch")
        )
        straddled |= any(
            a < outage_started and b > outage_ended for a, b in itertools.pairwise(logged)
        )
        samples = client.list_artifacts(run.info.run_id, "samples")
        assert len(samples) == epochs, [a.path for a in samples]  # every epoch's image
        assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")} >= {
            "checkpoint/last.ckpt"
        }
    assert straddled, "no trial was training across the outage"
    assert outage_ended - outage_started >= 8


def test_stopped_job_resumes_without_rerunning_finished_trials(
    cluster: LocalCluster, dataset_path: Path, tmp_path: Path
) -> None:
    uri, epochs, name = cluster.mlflow, 2, "stop-resume"
    sweep = sweep_command(dataset_path, name, uri, tmp_path / "storage", trials=3, epochs=epochs)
    ray = str(BIN / "ray")
    # `ray job stop` sends SIGTERM, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (3 s by default)
    runtime_env = '{"env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": "60"}}'
    job = [ray, "job", "submit", "--address", cluster.dashboard, "--runtime-env-json", runtime_env]

    def run(args: list[str], timeout: int = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=cluster.env(), capture_output=True, text=True, timeout=timeout, cwd=tmp_path
        )

    submitted = run([*job, "--submission-id", "madn-stop-1", "--no-wait", "--", *sweep])
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr

    def status() -> str:
        result = run([ray, "job", "status", "--address", cluster.dashboard, "madn-stop-1"])
        return result.stdout + result.stderr

    def one_trial_done() -> bool:
        runs = _trial_runs(uri, name)
        return any(r.data.tags.get(tracking.OUTCOME) == "finished" for r in runs.values())

    wait_until(one_trial_done, 300, "a trial finished", lambda: "RUNNING" in status(), 2.0)
    stopped = run([ray, "job", "stop", "--address", cluster.dashboard, "madn-stop-1"], 120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "was stopped" in status()
    logs = run([ray, "job", "logs", "--address", cluster.dashboard, "madn-stop-1"]).stdout
    assert "interrupted; the sweep state is saved" in logs, logs[-3000:]

    experiment = MlflowClient(uri).get_experiment_by_name(name)
    parents = tracking.find_runs(uri, experiment.experiment_id, {tracking.ROLE: "sweep"})
    assert len(parents) == 1
    assert parents[0].info.status == "KILLED"
    assert parents[0].data.tags[tracking.OUTCOME] == "interrupted"
    before = _trial_runs(uri, name)
    done_before = {t for t, r in before.items() if r.data.tags.get(tracking.OUTCOME) == "finished"}
    assert done_before and len(done_before) < 4, {t: r.data.tags for t, r in before.items()}

    resumed = run([*job, "--", *sweep, "--resume"], timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-2000:]
    after = _trial_runs(uri, name)
    assert len(after) == 4  # 3 searched + the baseline, each exactly one run
    for trial_id in done_before:  # finished before the stop: not trained again
        assert after[trial_id].info.run_id == before[trial_id].info.run_id
        assert after[trial_id].info.end_time == before[trial_id].info.end_time
        assert _epoch_steps(uri, after[trial_id].info.run_id) == list(range(1, epochs + 1))
    for run_after in after.values():
        assert run_after.data.tags[tracking.OUTCOME] == "finished", run_after.data.tags
        assert set(_epoch_steps(uri, run_after.info.run_id)) == set(range(1, epochs + 1))
    parent = MlflowClient(uri).get_run(parents[0].info.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[tracking.OUTCOME] == "finished"
    counts = {k: v for k, v in parent.data.tags.items() if k.startswith("madn.trials_")}
    assert counts == {"madn.trials_finished": "4"}  # no stale count from the interrupted run
    assert "best/val/score" in parent.data.metrics
    assert any(key.startswith("best.") for key in parent.data.params)  # the final winner


def test_unreachable_tracking_server_fails_before_any_trial(
    dataset_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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


def test_killed_worker_node_trial_resumes_from_checkpoint_on_head(
    cluster: LocalCluster, dataset_path: Path, tmp_path: Path
) -> None:
    uri, epochs, name = cluster.mlflow, 6, "node-loss"
    driver, log = _start_driver(cluster, dataset_path, name, epochs, tmp_path)
    try:

        def worker_trial_past_epoch_2() -> str | None:
            for trial_id, run in _trial_runs(uri, name).items():
                if run.data.tags.get("madn.node") == "worker-1":
                    epoch = run.data.metrics.get("epoch", 0)
                    assert epoch < epochs, "the worker's trial finished before the node was killed"
                    if epoch >= 2:  # epoch 1's checkpoint is persisted before epoch 2 is logged
                        return trial_id
            return None

        victim = wait_until(
            worker_trial_past_epoch_2, 300, "epoch 2 on worker-1", lambda: driver.poll() is None
        )
        assert kill_session(cluster.pid("ray-worker-1")) > 0
        assert driver.wait(timeout=480) == 0, _tail(log)
    finally:
        if driver.poll() is None:
            driver.kill()

    runs = _trial_runs(uri, name)
    assert len(runs) == 2
    for run in runs.values():
        assert run.data.tags[tracking.OUTCOME] == "finished", run.data.tags
        assert set(_epoch_steps(uri, run.info.run_id)) == set(range(1, epochs + 1))
    moved = runs[victim]
    assert moved.data.tags["madn.nodes"] == "worker-1,head"
    assert moved.data.tags["madn.node"] == "head"
    steps = _epoch_steps(uri, moved.info.run_id)
    assert steps.count(1) == 1, steps  # resumed from a checkpoint, not trained from scratch
