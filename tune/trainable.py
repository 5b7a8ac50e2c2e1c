"""The Ray Tune trainable: one sweep trial trains one model with `pipelines.training.train`.

Each epoch the trial logs its metrics to its nested MLflow run. Each validated epoch (every
one unless `val_every` > 1) it also logs the sample image grid (as `samples/epoch_NNN.png` and
with `log_image` under key "samples", which the MLflow UI shows with a step slider), then
reports the metrics with a checkpoint (the run folder: last.ckpt, config.json, metrics.jsonl,
samples.png) to Ray Tune, which persists it under the sweep's `storage_path` (ASHA judges
`epoch`, so reports every N epochs are fine). A retried or
resumed trial starts from that checkpoint and continues its existing MLflow run. The trial
records the Ray node it ran on (`madn.node`, `madn.node_id`; every node it used in
`madn.nodes`).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madn_core.trainer import Trainer, TrainerCallback
from pipelines.data.dataset import SliceDataset
from pipelines.training.train import (
    BEST_CHECKPOINT,
    CHECKPOINT,
    SELECTION_METRIC,
    train_model,
)
from tune import tracking
from tune.train_settings import build_config

NODE_RESOURCE = "madn-node-"


@dataclass(frozen=True)
class TrialSettings:
    """What every trial shares (picklable, passed with `tune.with_parameters`).

    data: dataset folder or URI; model: `madn train` settings applied under each trial's
    searched values (epochs, base_channels, lr, ...); tracking_uri/experiment_id/parent_run_id/
    sweep: where the trial's MLflow run lives; max_val_slices: validation size per epoch."""

    data: str
    model: dict[str, Any]
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep: str
    image_size: int
    max_val_slices: int = 64
    extra_tags: dict[str, str] = field(default_factory=dict)


def _node() -> tuple[str, str]:
    """(node name, Ray node id) of the running worker. The name is the node's `madn-node-<name>`
    custom resource (set by infra/local/start-ray-cluster.sh and the cluster configs), else the
    host name."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    name = socket.gethostname()
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            labels = [k for k in node.get("Resources", {}) if k.startswith(NODE_RESOURCE)]
            if labels:
                name = labels[0][len(NODE_RESOURCE) :]
    return name, node_id


class _Reporter(TrainerCallback):
    """After each epoch: MLflow metrics + samples image, then `tune.report` with a checkpoint."""

    def __init__(self, settings: TrialSettings, run_id: str, out: Path) -> None:
        self.settings, self.run_id, self.out = settings, run_id, out

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        from ray import tune

        uri = self.settings.tracking_uri
        tracking.log_metrics(uri, self.run_id, {**metrics, "epoch": epoch}, step=epoch)
        if SELECTION_METRIC not in metrics:  # not validated (train.val_every): nothing to judge
            return
        samples = self.out / "samples.png"
        if samples.exists():
            staged = self.out / "samples" / f"epoch_{epoch:03d}.png"
            staged.parent.mkdir(exist_ok=True)
            shutil.copyfile(samples, staged)
            tracking.with_retries(
                tracking.client(uri).log_artifact, self.run_id, str(staged), "samples"
            )
            tracking.log_sample_grid(uri, self.run_id, samples, epoch)  # the UI's step slider
        checkpoint_dir = Path(tempfile.mkdtemp(prefix="madn-report-"))
        try:
            for name in (
                CHECKPOINT,
                BEST_CHECKPOINT,
                "config.json",
                "metrics.jsonl",
                "samples.png",
            ):
                if (self.out / name).exists():
                    shutil.copyfile(self.out / name, checkpoint_dir / name)
            tune.report(
                {**metrics, "epoch": epoch},
                checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)),
            )
        finally:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """The searched values of a trial with the variant made explicit."""
    return {"variant": "madn", **config}


def run_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable (see module doc)."""
    import ray
    from ray import tune

    context = tune.get_context()
    trial_id = context.get_trial_id()
    params = trial_params(config)
    gpu = bool(ray.get_gpu_ids())
    model_settings = {**settings.model, **params, "device": "cuda" if gpu else "cpu"}
    model_config = build_config(model_settings, settings.image_size)
    uri = settings.tracking_uri
    run_id = tracking.trial_run(
        uri,
        settings.experiment_id,
        settings.parent_run_id,
        settings.sweep,
        trial_id,
        tracking.trial_run_name(params, trial_id),
        {**{k: v for k, v in settings.model.items() if k != "model"}, **params},
    )
    node, node_id = _node()
    mlflow = tracking.client(uri)
    previous = mlflow.get_run(run_id).data.tags.get("madn.nodes", "")
    nodes = ",".join(dict.fromkeys([n for n in previous.split(",") if n] + [node]))
    for key, value in {
        "madn.node": node,
        "madn.node_id": node_id,
        "madn.nodes": nodes,
        **settings.extra_tags,
    }.items():
        tracking.with_retries(mlflow.set_tag, run_id, key, value)

    out = Path(tempfile.gettempdir()) / "madn-trials" / f"{settings.sweep}-{trial_id}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            for name in (CHECKPOINT, BEST_CHECKPOINT):
                if (Path(folder) / name).exists():
                    shutil.copyfile(Path(folder) / name, out / name)
    dataset = SliceDataset(settings.data)
    if checkpoint is None:  # a resumed trial's run has it already
        tracking.log_dataset_input(uri, run_id, dataset)
    try:
        train_model(
            dataset,
            model_config,
            out,
            resume=checkpoint is not None,
            callbacks=[_Reporter(settings, run_id, out)],
            progress=False,
            max_val_slices=settings.max_val_slices,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
