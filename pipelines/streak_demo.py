"""A short end-to-end MADN training on generated streak pairs (the demo until the sweep exists).

Trains the `madn` variant, validates every epoch against the held-out pairs' ground truth
(PSNR of the corrected images vs No MAR), and writes to `out_dir`: `last.ckpt`, `metrics.json`
(one entry per epoch) and `samples.png` (corrupted, corrected and clean images, CT and MRI rows).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from madn_core.config import MADNConfig
from madn_core.metrics import psnr
from madn_core.model import MADN
from madn_core.trainer import Trainer
from pipelines.figures import save_image_grid
from pipelines.progress import ProgressBar
from pipelines.streaks import add_artefacts, clean_pairs, streak_batches


def demo_config(size: int, epochs: int, base_channels: int, seed: int) -> MADNConfig:
    """A small `madn` model for CPU: LNCC sigma scaled to the image size, lr 2e-4 for speed."""
    return MADNConfig.from_dict(
        {
            "variant": "madn",
            "image_size": size,
            "network": {
                "base_channels": base_channels,
                "num_res": 2,
                "discriminator_channels": base_channels,
            },
            "loss": {"similarity": "lncc", "sigma": max(1.0, 5.0 * size / 256)},
            "optim": {"lr": 2e-4},
            "train": {"epochs": epochs, "batch_size": 4, "seed": seed, "device": "auto"},
        }
    )


def run_streak_demo(
    out_dir: str | os.PathLike[str],
    epochs: int = 4,
    size: int = 64,
    examples: int = 64,
    base_channels: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Train, validate and write the demo's files; returns the summary that the CLI prints."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = demo_config(size, epochs, base_channels, seed)
    batches = streak_batches(examples, size, config.train.batch_size, seed)
    generator = torch.Generator().manual_seed(seed + 10_000)
    val_clean = clean_pairs(8, size, generator)
    val_corrupted = add_artefacts(val_clean, generator)

    def validate(model: MADN, epoch: int) -> dict[str, float]:
        device = next(model.parameters()).device
        corrected = model.correct(val_corrupted.to(device)).float().cpu()
        return {
            "val/psnr_ct": psnr(corrected[:, :1], val_clean[:, :1], 2.0).mean().item(),
            "val/psnr_mri": psnr(corrected[:, 1:], val_clean[:, 1:], 2.0).mean().item(),
        }

    progress = ProgressBar(epochs * len(batches), "madn demo")
    trainer = Trainer(config, callbacks=[progress])
    started = time.perf_counter()
    try:
        history = trainer.fit(batches, validate=validate, checkpoint_path=out / "last.ckpt")
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    (out / "metrics.json").write_text(json.dumps(history, indent=2))

    corrected = trainer.model.correct(val_corrupted.to(trainer.device)).float().cpu()
    shown = range(2)
    save_image_grid(
        {
            "corrupted": [val_corrupted[i, c].numpy() for i in shown for c in (0, 1)],
            "corrected": [corrected[i, c].numpy() for i in shown for c in (0, 1)],
            "clean": [val_clean[i, c].numpy() for i in shown for c in (0, 1)],
        },
        out / "samples.png",
        row_labels=[f"{name} {i}" for i in shown for name in ("CT", "MRI")],
        title=f"madn demo after {epochs} epochs",
    )
    baseline = {
        "val/psnr_ct": psnr(val_corrupted[:, :1], val_clean[:, :1], 2.0).mean().item(),
        "val/psnr_mri": psnr(val_corrupted[:, 1:], val_clean[:, 1:], 2.0).mean().item(),
    }
    return {
        "out_dir": str(out),
        "seconds": seconds,
        "steps": trainer.step,
        "final": history[-1],
        "no_mar": baseline,
    }
