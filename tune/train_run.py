"""`madn train --experiment/--tracking-uri`: one training as an MLflow run that `madn promote
--run-id` can promote.

The run (tag `madn.role=train`) gets:
- params: the training settings and every MADNConfig field (dotted keys), and `data`;
- tags: the dataset key and location, image size, madn version and git commit; the dataset as
  an MLflow dataset input;
- per epoch: every metric of the epoch (train losses, val/...) at step = epoch, and the sample
  grid with `log_image` (key "samples", the UI's step slider);
- at the end: `checkpoint/best.ckpt`, `checkpoint/last.ckpt`, `config.json`, `metrics.jsonl`
  and `samples.png`, the layout `madn promote` reads; status FINISHED, or FAILED/KILLED (with
  `madn.outcome`) when training raised or was interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from madn_core.config import MADNConfig
from madn_core.trainer import Trainer, TrainerCallback
from pipelines.training.train import SELECTION_METRIC
from tune import tracking

ROLE = "train"
ARTIFACTS = ("config.json", "metrics.jsonl", "samples.png")


class EpochLogger(TrainerCallback):
    """After each epoch: the epoch's metrics, and its sample grid if it was validated."""

    def __init__(self, uri: str, run_id: str, out: Path) -> None:
        self.uri, self.run_id, self.out = uri, run_id, out

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        tracking.log_metrics(self.uri, self.run_id, {**metrics, "epoch": epoch}, step=epoch)
        samples = self.out / "samples.png"
        if SELECTION_METRIC in metrics and samples.exists():
            tracking.log_sample_grid(self.uri, self.run_id, samples, epoch)


def flat_params(config: MADNConfig, settings: Mapping[str, Any]) -> dict[str, str]:
    """The run's params: every config field as a dotted key, plus the flags given."""
    params: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            params[prefix] = str(value)

    walk("", config.to_dict())
    for key, value in settings.items():
        if key not in ("model", "out", "resume", "experiment", "tracking_uri"):
            params.setdefault(key, str(value))
    return params


@contextmanager
def tracked_training(
    experiment: str,
    tracking_uri: str | None,
    dataset: Any,
    config: MADNConfig,
    out: Path,
    settings: Mapping[str, Any],
) -> Iterator[tuple[str, str, EpochLogger]]:
    """(tracking URI, run id, epoch callback) of a new run for one training (module doc); the
    run ends FINISHED with the artifacts when the block completes, else FAILED or KILLED."""
    uri = tracking.connect(tracking_uri)
    experiment_id = tracking.ensure_experiment(uri, experiment)
    run = tracking.with_retries(
        tracking.client(uri).create_run,
        experiment_id,
        run_name=f"train-{config.variant}-{out.name}",
        tags={tracking.ROLE: ROLE, **tracking.provenance_tags(dataset)},
    )
    run_id = run.info.run_id
    tracking.log_params(uri, run_id, {**flat_params(config, settings), "data": dataset.location})
    tracking.log_dataset_input(uri, run_id, dataset)
    try:
        yield uri, run_id, EpochLogger(uri, run_id, out)
    except KeyboardInterrupt:
        tracking.finish_run(uri, run_id, "KILLED", {tracking.OUTCOME: "interrupted"})
        raise
    except BaseException as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        tracking.finish_run(uri, run_id, "FAILED", {tracking.OUTCOME: "error", "madn.error": first})
        raise
    log_run_folder(uri, run_id, out)
    tracking.finish_run(uri, run_id, "FINISHED", {tracking.OUTCOME: "finished"})


def log_run_folder(uri: str, run_id: str, out: Path) -> None:
    """The run folder's checkpoints under `checkpoint/` and its reports at the top."""
    client = tracking.client(uri)
    for name in ("best.ckpt", "last.ckpt"):
        if (out / name).exists():
            tracking.with_retries(client.log_artifact, run_id, str(out / name), "checkpoint")
    for name in ARTIFACTS:
        if (out / name).exists():
            tracking.with_retries(client.log_artifact, run_id, str(out / name))
