"""`madn train --experiment/--tracking-uri`: the training as an MLflow run in a real sqlite
store (params, per-epoch metrics, log_image samples, dataset input, provenance, checkpoints),
then promoted with `madn promote --run-id` through the gate."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from tune.cli import main

TINY = ["--base-channels", "8", "--num-res", "1", "--lr", "2e-4", "--batch-size", "2"]


def test_tracked_training_can_be_promoted(dataset_path: Path, tmp_path: Path, capsys) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--experiment", "hip-train", "--tracking-uri", uri]
    args = ["train", "--data", str(dataset_path), "--variant", "adn-ct", "--epochs", "2"]
    args += ["--patch", "16", "--patch-focus", "0.75"]
    assert main([*args, "--out", str(tmp_path / "run"), *TINY, *common]) == 0
    printed = capsys.readouterr().out
    assert "madn promote --experiment hip-train --run-id" in printed
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("hip-train")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["madn.outcome"] == "finished"
    assert run.data.tags["madn.role"] == "train" and run.data.tags["madn.version"]
    assert run.data.tags["madn.dataset_key"] in str(dataset_path)
    assert run.data.params["data"] == str(dataset_path)
    assert run.data.params["variant"] == "adn-ct"
    assert run.data.params["network.metal_fill"] == "True"  # the quality recipe
    assert run.data.params["train.patch_focus"] == "0.75"
    history = client.get_metric_history(run.info.run_id, "val/score")
    assert [m.step for m in history] == [1, 2]
    top = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"checkpoint", "config.json", "metrics.jsonl", "samples.png", "images"} <= top
    saved = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert {"best.ckpt", "last.ckpt"} <= saved
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    assert len([p for p in images if p.endswith(".png")]) == 2  # one per epoch: the slider
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == [
        run.data.tags["madn.dataset_key"]
    ]

    code = main(["promote", *common, "--run-id", run.info.run_id, "--model-name", "hip-train"])
    assert code in (0, 3)  # the gate decides; either way a version is registered
    version = client.get_model_version_by_alias("hip-train", "challenger")
    assert version.tags["source_run_id"] == run.info.run_id
    crowned = "champion" in client.get_registered_model("hip-train").aliases
    assert crowned == (code == 0) == (float(version.tags["nomar_gain_db"]) > 0)
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the store, not in the cwd
