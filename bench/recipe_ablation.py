"""One arm of the recipe ablation in docs/model.md: train adn-ct with the shared base settings
plus dotted config overrides, and print its validation curve against No MAR.

    python bench/recipe_ablation.py DATASET NAME '{"network.residual": true}' [--epochs 40]

Base: width 16, 2 residual blocks, lr 2e-4, batch 4, 64 px native-resolution patches, one CPU
thread (two arms run side by side on a 2-core machine). Runs go to runs/ablation/NAME.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from madn_core.config import MADNConfig
from pipelines.data.dataset import SliceDataset
from pipelines.training.train import train_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("name")
    parser.add_argument("overrides", nargs="?", default="{}")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = SliceDataset(args.data)
    base = {
        "variant": "adn-ct",
        "image_size": dataset.size,
        "network": {"base_channels": 16, "discriminator_channels": 16, "num_res": 2},
        "optim": {"lr": 2e-4},
        "train": {"epochs": args.epochs, "batch_size": 4, "patch": 64, "device": "cpu"},
    }
    config = MADNConfig.from_dict(base).with_overrides(json.loads(args.overrides))
    start = time.monotonic()
    result = train_model(dataset, config, Path("runs/ablation") / args.name, max_val_slices=48)
    for epoch, h in enumerate(result.history, start=1):
        print(
            f"{args.name} epoch {epoch}: CT PSNR "
            f"{h['val/psnr_ct']:.2f} (No MAR {h['val/nomar/psnr_ct']:.2f}), near "
            f"{h['val/psnr_ct_near']:.2f} ({h['val/nomar/psnr_ct_near']:.2f}), sigma_CT "
            f"{h['val/sigma_ct']:.0f} HU ({h['val/nomar/sigma_ct']:.0f})"
        )
    print(f"{args.name}: {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
