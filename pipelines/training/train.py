"""Train one model on an ingested dataset: what `madn train` runs and each sweep trial calls.

`train_model` builds the Trainer for a MADNConfig, feeds it `UnpairedBatches` of the channels
the variant uses, validates every `train.val_every`-th epoch and the last
(`pipelines.training.validation`), and writes to `out_dir`:
- `config.json`: the full model configuration and the data location;
- `last.ckpt`: the full training state after the latest epoch (atomic; `resume=True` continues
  from it exactly);
- `best.ckpt`: the state after the validated epoch with the highest `val/score` so far (the
  one to evaluate, promote or deploy; `best_epoch` in metrics.jsonl's last line says which);
- `metrics.jsonl`: one JSON object per epoch (`epoch`, `step`, `train/...`, and `val/...` on
  validated epochs), rewritten atomically from the checkpoint's history so that it always
  matches it;
- `samples.png`: input / corrected / ground truth for the validation slices with most metal,
  rewritten after every validated epoch.
Logging elsewhere (Ray Tune, MLflow) is a `TrainerCallback` passed in by the caller.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from madn_core.config import MADNConfig
from madn_core.trainer import Trainer, TrainerCallback
from pipelines.data.ct_prior import PRIOR_COLUMN, stored_prior
from pipelines.data.dataset import Augment, SliceDataset, UnpairedBatches, channels_for_variant
from pipelines.io.atomic import write_text_atomic
from pipelines.io.figures import save_image_grid
from pipelines.io.progress import ProgressBar
from pipelines.training.validation import SAMPLE_ROWS, Validator

CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"
SELECTION_METRIC = "val/score"


@dataclass
class TrainResult:
    """history: per-epoch metrics; checkpoint: last.ckpt; best: best.ckpt; out_dir: the run
    folder."""

    history: list[dict[str, float]]
    checkpoint: Path
    out_dir: Path
    samples: Path | None
    best: Path | None = None


class _MetricsLog(TrainerCallback):
    """Keeps `metrics.jsonl` equal to the trainer's history after every epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        write_metrics(self.path, trainer.history)


class _BestCheckpoint(TrainerCallback):
    """Writes `best.ckpt` whenever an epoch's `val/score` beats every earlier epoch's."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        scores = [entry.get(SELECTION_METRIC, -math.inf) for entry in trainer.history]
        finite = [s if math.isfinite(s) else -math.inf for s in scores]
        best = max(range(len(finite)), key=finite.__getitem__)
        trainer.history[-1]["best_epoch"] = float(best + 1)
        if best == len(finite) - 1 or not self.path.exists():
            trainer.save(self.path)


class _SamplesGrid(TrainerCallback):
    """Rewrites `samples.png` after every validated epoch, so a watcher (or MLflow) sees
    progress."""

    def __init__(self, validator: Validator, path: Path, variant: str) -> None:
        self.validator, self.path, self.variant = validator, path, variant

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        ran = self.validator.last_samples
        if ran is not None and ran[0] == epoch:
            write_samples(self.validator, trainer, self.path, self.variant)


def write_samples(validator: Validator, trainer: Trainer, path: Path, variant: str) -> Path:
    """The grid of the validation slices with most metal, corrected by the inference model
    (the validator's outputs of this epoch when it has run)."""
    rows = min(SAMPLE_ROWS, len(validator.inputs))
    return save_image_grid(
        validator.sample_grid_images(trainer.inference_model, count=rows, epoch=trainer.epoch),
        path,
        row_labels=[f"CT {i + 1}" for i in range(rows)] + [f"MRI {i + 1}" for i in range(rows)],
        title=f"{variant}: validation slices after epoch {trainer.epoch}",
    )


def write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    lines = [
        json.dumps({"epoch": i + 1, **{k: _json_number(v) for k, v in entry.items()}})
        for i, entry in enumerate(history)
    ]
    write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


def _json_number(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def with_data_spec(config: MADNConfig, dataset: SliceDataset) -> MADNConfig:
    """`config` with `data` set from the dataset: its in-plane spacing (mm, median over slices),
    CT window and CT prior (the classical MAR its CT channel went through, `dataset.json`'s
    `ct_prior`), so that checkpoints tell inference what a pixel means."""
    if len(dataset) == 0:
        return config
    sample = dataset.read(np.arange(min(len(dataset), 64)), ["spacing_x", "ct_min", "ct_max"])
    return config.with_overrides(
        {
            "data.spacing_mm": float(np.median(sample["spacing_x"])),
            "data.ct_window_hu": (float(sample["ct_min"][0]), float(sample["ct_max"][0])),
            "data.ct_prior": stored_prior(dataset),
        }
    )


def check_image_size(config: MADNConfig, dataset: SliceDataset) -> None:
    if config.image_size != dataset.size:
        raise ValueError(
            f"model image_size {config.image_size} does not match the dataset's {dataset.size} px "
            f"slices ({dataset.location}); set image_size to {dataset.size}"
        )


def _run_folder(out: Path, resume: bool) -> Path:
    """Create the run folder; a finished or running run there needs `resume`."""
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not resume:
        raise FileExistsError(
            f"{checkpoint} exists: pass --resume to continue that run, or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_model(
    data: str | os.PathLike[str] | SliceDataset,
    config: MADNConfig,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = True,
    augment: Augment | None = None,
    max_val_slices: int = 256,
) -> TrainResult:
    """Train `config` on the dataset at `data` (path or URI); see the module doc for outputs."""
    dataset = data if isinstance(data, SliceDataset) else SliceDataset(data)
    check_image_size(config, dataset)
    config = with_data_spec(config, dataset)
    out = _run_folder(Path(out_dir), resume)
    checkpoint = out / CHECKPOINT
    channels = channels_for_variant(config.variant)
    prior = config.data.ct_prior  # the dataset's stored prior: the CT input is its column
    batches = UnpairedBatches(
        dataset,
        split="train",
        channels=[PRIOR_COLUMN if c == "ct" and prior != "none" else c for c in channels],
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        augment=augment
        or Augment(flip=True, crop=config.train.patch or None, focus=config.train.patch_focus),
    )
    validator = Validator(dataset, channels, split="val", max_slices=max_val_slices, ct_prior=prior)
    (out / "config.json").write_text(
        json.dumps({"model": config.to_dict(), "data": dataset.location}, indent=2)
    )
    metrics_log = _MetricsLog(out / "metrics.jsonl")
    bars: list[ProgressBar] = []
    samples_grid = _SamplesGrid(validator, out / "samples.png", config.variant)
    best = _BestCheckpoint(out / BEST_CHECKPOINT)
    trainer = Trainer(config, callbacks=[best, metrics_log, samples_grid, *callbacks])
    if resume and checkpoint.exists():
        trainer.load(checkpoint)
    remaining = max(0, config.train.epochs - trainer.epoch)
    if progress and remaining:
        bars.append(ProgressBar(remaining * len(batches), f"train {config.variant}"))
        trainer.callbacks.append(bars[0])
    try:
        history = trainer.fit(batches, validate=validator, checkpoint_path=checkpoint)
    finally:
        for bar in bars:
            bar.close()
    write_metrics(out / "metrics.jsonl", history)
    if not checkpoint.exists():  # resumed a finished run: keep a checkpoint all the same
        trainer.save(checkpoint)
    samples = out / "samples.png"
    if not samples.exists():
        write_samples(validator, trainer, samples, config.variant)
    best_path = out / BEST_CHECKPOINT
    if not best_path.exists():
        trainer.save(best_path)
    return TrainResult(
        history=history, checkpoint=checkpoint, out_dir=out, samples=samples, best=best_path
    )


def load_train_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML or JSON file of `madn train` settings (the same keys as the flags)."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {file} does not exist")
    try:
        content = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"config file {file} is not valid YAML: {error}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ValueError(f"config file {file} must hold a mapping of settings")
    return content
