"""The sweep service on a real local Ray runtime and a real sqlite MLflow store: nested runs,
ASHA early stopping, every metric tried, the registry alias, the report, resume and failures."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import tiny_sweep_command
from mlflow import MlflowClient

from tune import tracking
from tune.cli import main
from tune.sweep import SweepSettings, run_sweep

TINY_MODEL = {"base_channels": 8, "num_res": 1, "batch_size": 4, "lr": 5e-4}


def _settings(data: Path, workdir: Path, **overrides: object) -> SweepSettings:
    values: dict = dict(
        data=str(data),
        trials=6,
        epochs=3,
        max_concurrent=2,
        experiment="test-sweep",
        model=TINY_MODEL,
        workdir=str(workdir),
        max_val_slices=16,
        verbose=0,
    )
    values.update(overrides)
    return SweepSettings(**values)


@pytest.fixture(scope="module")
def finished_sweep(ray_runtime, dataset_path: Path, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("sweep")
    return run_sweep(_settings(dataset_path, workdir)), workdir


def test_sweep_logs_every_trial_as_a_nested_run(finished_sweep) -> None:
    result, workdir = finished_sweep
    assert result.tracking_uri == f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
    runs = tracking.trial_runs(result.tracking_uri, result.experiment_id, "test-sweep")
    assert len(runs) == 7  # 6 searched + the multichannel baseline
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    dataset_key = parent.data.tags["madn.dataset_key"]  # each trial carries it as its input
    assert len({r.data.tags[tracking.TRIAL_ID] for r in runs}) == 7  # no duplicates
    for run in runs:
        assert run.data.tags[tracking.PARENT] == result.parent_run_id
        assert "val/score" in run.data.metrics and "train/g_total" in run.data.metrics
        assert run.data.params["epochs"] == "3"
        history = MlflowClient(result.tracking_uri).get_metric_history(run.info.run_id, "epoch")
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        assert run.info.status == "FINISHED"  # early stops too: nothing failed
        name, variant = run.data.tags[tracking.RUN_NAME], run.data.params["variant"]
        assert name.startswith(variant) and name.endswith(f"[{run.data.tags[tracking.TRIAL_ID]}]")
        artifacts = {
            a.path for a in MlflowClient(result.tracking_uri).list_artifacts(run.info.run_id)
        }
        assert {"samples", "checkpoint"} <= artifacts
        inputs = MlflowClient(result.tracking_uri).get_run(run.info.run_id).inputs
        assert [d.dataset.name for d in inputs.dataset_inputs] == [dataset_key]
    variants = [r.data.params["variant"] for r in runs]
    assert variants.count("multichannel") == 1
    tried = {r.data.params["similarity"] for r in runs if r.data.params["variant"] == "madn"}
    assert tried == {"lncc", "cc", "nmi"}
    for run in runs:  # sigma only for LNCC (define-by-run)
        params = run.data.params
        assert ("sigma" in params) == (params.get("similarity") == "lncc")
    outcomes = [r.data.tags[tracking.OUTCOME] for r in runs]
    assert "stopped_early" in outcomes, outcomes  # ASHA stopped at least one trial
    stopped = [r for r in runs if r.data.tags[tracking.OUTCOME] == "stopped_early"]
    assert all(r.info.status == "FINISHED" and r.data.metrics["epoch"] < 3 for r in stopped)
    assert parent.info.status == "FINISHED"
    assert len(parent.data.tags["madn.dataset_key"]) == 16
    assert len(parent.data.tags.get("mlflow.source.git.commit", "0" * 40)) == 40
    assert parent.data.tags["madn.best_run_id"] == result.best_run_id
    assert result.best_value is not None


def test_promote_report_and_correct_with_registry_uri(
    finished_sweep, synth_manifest: Path, tmp_path: Path
) -> None:
    from pipelines.data.manifest import read_manifest

    result, _ = finished_sweep
    uri = result.tracking_uri
    common = ["--experiment", "test-sweep", "--tracking-uri", uri]
    client = MlflowClient(uri)
    # the gate: a 1-epoch model is worse than No MAR, so it is registered as challenger only
    assert main(["promote", *common, "--model-name", "hip-mar"]) == 3
    refused = client.get_model_version_by_alias("hip-mar", "challenger")
    assert float(refused.tags["nomar_gain_db"]) <= 0
    assert refused.tags["decision"] == "challenger only"
    assert "does not beat No MAR" in refused.tags["reason"]
    assert int(refused.tags["test_subjects"]) >= 1 and refused.tags["paired_p_value"]
    assert "champion" not in client.get_registered_model("hip-mar").aliases
    # with the margin lowered below its score it is crowned
    assert main(["promote", *common, "--model-name", "hip-mar", "--min-gain", "-1000"]) == 0
    champion = client.get_model_version_by_alias("hip-mar", "champion")
    assert client.get_model_version_by_alias("hip-mar", "challenger").version == champion.version
    assert champion.tags["decision"] == "champion" and champion.tags["test_metric"] == "test/score"
    assert champion.tags["source_run_id"] == result.best_run_id
    assert "dB over No MAR" in champion.description and "Gate: champion" in champion.description
    assert "below 0 worse" in client.get_registered_model("hip-mar").description
    experiment = client.get_experiment(result.experiment_id)
    assert "over No MAR" in experiment.tags["mlflow.note.content"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # promoting the same sweep again: same score, so the champion does not move (exit 3)
    assert main(["promote", *common, "--model-name", "hip-mar", "--min-gain", "-1000"]) == 3
    second = client.get_model_version_by_alias("hip-mar", "challenger")
    assert second.version != champion.version
    assert client.get_model_version_by_alias("hip-mar", "champion").version == champion.version
    assert second.tags["decision"] == "challenger only"
    assert "does not beat the champion" in second.tags["reason"]

    assert main(["report", *common, "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    for text in ("lncc", "cc", "nmi", "multichannel (baseline)", "Best trial"):
        assert text in report
    assert (tmp_path / "report" / "objective_vs_lambda.png").stat().st_size > 0
    assert (tmp_path / "report" / "objective_vs_sigma.png").stat().st_size > 0
    assert (tmp_path / "report" / "learning_curves.png").stat().st_size > 0
    assert "learning_curves.png" in report
    logged = {a.path for a in client.list_artifacts(result.parent_run_id, "report")}
    assert "report/report.md" in logged

    variant = client.get_run(result.best_run_id).data.params["variant"]
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    inputs = ["--ct", str(entry.files["ct"])]
    if variant in ("madn", "multichannel"):
        inputs += ["--mri", str(entry.files["mri"])]
    elif variant == "adn-mr":
        inputs = ["--mri", str(entry.files["mri"])]
    code = main(
        [
            "correct",
            "--model",
            "models:/hip-mar@champion",
            "--tracking-uri",
            uri,
            *inputs,
            "--out",
            str(tmp_path / "corrected"),
        ]
    )
    assert code == 0
    assert any((tmp_path / "corrected").glob("*_corrected.nii.gz"))


def test_failed_trial_is_marked_and_sweep_completes(
    ray_runtime, dataset_path: Path, tmp_path: Path
) -> None:
    diverging = {"variant": "madn", "similarity": "cc", "lambda_sim": 1.0, "lr": 1e30}
    settings = _settings(
        dataset_path,
        tmp_path,
        trials=0,
        epochs=1,
        baselines=[diverging, {"variant": "multichannel"}],
        max_failures=0,
        experiment="test-failure",
    )
    result = run_sweep(settings)
    runs = tracking.trial_runs(result.tracking_uri, result.experiment_id, "test-failure")
    assert len(runs) == 2
    failed = [r for r in runs if r.data.params.get("lr") == "1e+30"]
    assert len(failed) == 1
    assert failed[0].info.status == "FAILED"
    assert failed[0].data.tags[tracking.OUTCOME] == "error"
    assert "non-finite loss" in failed[0].data.tags["madn.error"]
    assert result.outcomes == {"error": 1, "finished": 1}
    assert result.best_config == {"variant": "multichannel"}


def test_trial_with_val_every_reports_only_validated_epochs(
    ray_runtime, dataset_path: Path, tmp_path: Path
) -> None:
    settings = _settings(
        dataset_path,
        tmp_path,
        trials=0,
        epochs=3,
        baselines=[{"variant": "multichannel"}],
        model={**TINY_MODEL, "val_every": 2},
        experiment="test-val-every",
    )
    result = run_sweep(settings)
    (run,) = tracking.trial_runs(result.tracking_uri, result.experiment_id, "test-val-every")
    client = MlflowClient(result.tracking_uri)
    steps = {
        name: [m.step for m in client.get_metric_history(run.info.run_id, name)]
        for name in ("train/g_total", "val/score")
    }
    assert steps == {"train/g_total": [1, 2, 3], "val/score": [2, 3]}
    assert run.data.tags[tracking.OUTCOME] == "finished"
    samples = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert samples == {"samples/epoch_002.png", "samples/epoch_003.png"}
    assert result.outcomes == {"finished": 1}


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(
    ray_runtime, dataset_path: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = tiny_sweep_command(
        dataset_path,
        tmp_path,
        "test-resume",
        *("--trials", "3", "--epochs", "2", "--max-concurrent", "1", "--lr", "5e-4"),
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    driver = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    experiment_id = tracking.ensure_experiment(uri, "test-resume")
    deadline = time.monotonic() + 240
    finished: list = []
    while time.monotonic() < deadline and driver.poll() is None:
        runs = tracking.trial_runs(uri, experiment_id, "test-resume")
        finished = [
            r for r in runs if r.data.tags.get(tracking.OUTCOME) in ("finished", "stopped_early")
        ]
        if finished:
            break
        time.sleep(1.0)
    assert finished, "no trial finished before the deadline"
    assert driver.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C: the driver stops mid-sweep
    assert driver.wait(timeout=120) == 130  # state saved, `madn sweep` says it was interrupted
    parent = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"})
    assert [(p.info.status, p.data.tags[tracking.OUTCOME]) for p in parent] == [
        ("KILLED", "interrupted")
    ]
    before = {
        r.data.tags[tracking.TRIAL_ID]: r
        for r in tracking.trial_runs(uri, experiment_id, "test-resume")
    }
    done_before = {
        t
        for t, r in before.items()
        if r.data.tags.get(tracking.OUTCOME) in ("finished", "stopped_early")
    }
    assert done_before and len(done_before) < 4

    settings = _settings(
        dataset_path,
        tmp_path,
        trials=3,
        epochs=2,
        max_concurrent=1,
        experiment="test-resume",
        tracking_uri=uri,
        storage=str(tmp_path / "ray"),
        resume=True,
    )
    result = run_sweep(settings)
    after = {
        r.data.tags[tracking.TRIAL_ID]: r
        for r in tracking.trial_runs(uri, experiment_id, "test-resume")
    }
    assert len(after) == 4  # 3 searched + baseline, each exactly one run
    client = MlflowClient(uri)
    for trial_id in done_before:  # finished trials were not trained again
        assert after[trial_id].info.run_id == before[trial_id].info.run_id
        steps = [m.step for m in client.get_metric_history(after[trial_id].info.run_id, "epoch")]
        assert steps == sorted(set(steps)), steps
    assert all(
        r.data.tags.get(tracking.OUTCOME) in ("finished", "stopped_early") for r in after.values()
    )
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"


def _finished_trials(uri: str, experiment_id: str, sweep: str) -> dict[str, object]:
    return {
        r.data.tags[tracking.TRIAL_ID]: r
        for r in tracking.trial_runs(uri, experiment_id, sweep)
        if r.data.tags.get(tracking.OUTCOME) in ("finished", "stopped_early")
    }


@pytest.mark.slow
def test_driver_killed_outright_then_resumed(
    ray_runtime, dataset_path: Path, tmp_path: Path
) -> None:
    """SIGKILL to the driver and its local Ray (a lost head), then `--resume`: trials finished
    before Tune's last snapshot are not re-run, no run is left RUNNING, the parent ends
    FINISHED."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "sweep.yaml").write_text("baselines: []\n")
    flags = ("--trials", "4", "--epochs", "2", "--max-concurrent", "1", "--lr", "5e-4")
    flags += ("--config", str(tmp_path / "sweep.yaml"))
    driver = subprocess.Popen(
        tiny_sweep_command(dataset_path, tmp_path, "killed", *flags),
        env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "2"},  # Tune's snapshot period (s)
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    experiment_id = tracking.ensure_experiment(uri, "killed")
    deadline, first_done = time.monotonic() + 300, None
    while time.monotonic() < deadline and driver.poll() is None:
        if first_done is None and _finished_trials(uri, experiment_id, "killed"):
            first_done = time.monotonic()
        if first_done is not None and time.monotonic() - first_done > 6:  # > a snapshot period
            if len(_finished_trials(uri, experiment_id, "killed")) < 3:  # one still to come
                break
            pytest.fail("the sweep ran too fast to be killed mid-way")
        time.sleep(0.5)
    assert first_done is not None and driver.poll() is None, "no trial finished in time"
    done_before = _finished_trials(uri, experiment_id, "killed")
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray runtime it started
    driver.wait(timeout=60)
    parent = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"})[0]
    assert parent.info.status == "RUNNING"  # nobody could close it

    settings = _settings(
        dataset_path,
        tmp_path,
        trials=4,
        epochs=2,
        max_concurrent=1,
        experiment="killed",
        baselines=[],
        tracking_uri=uri,
        storage=str(tmp_path / "ray"),
        resume=True,
    )
    result = run_sweep(settings)
    runs = tracking.trial_runs(uri, experiment_id, "killed")
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    assert len({r.data.tags[tracking.TRIAL_ID] for r in runs}) == len(runs)
    client = MlflowClient(uri)
    after = {r.data.tags[tracking.TRIAL_ID]: r for r in runs}
    rerun = 0
    for trial_id, run in done_before.items():
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "epoch")]
        rerun += steps != sorted(set(steps))
        assert after[trial_id].info.run_id == run.info.run_id
    print(f"trials re-run after SIGKILL: {rerun} of {len(done_before)} finished before the kill")
    assert rerun == 0
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
    assert result.parent_run_id == parent.info.run_id
