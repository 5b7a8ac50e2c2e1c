"""What ADN's artefact branch learned: a figure of every generator path of a trained model on
validation slices (docs/model.md, ablation 8).

    python bench/transfer_figure.py CHECKPOINT DATA OUT.png [--slices 3] [--crop 128]

For each of the validation slices with the most metal (x^a) and as many metal-free ones (y),
one row per channel: x^a, x̂ = G_I(E_I(x^a)) (the raw network, no band or shrink), y, the
artefact transfer ŷ^a = G_Ia(E_I(y), E_a(x^a)), its self-reduction G_I(E_I(ŷ^a)), and the
reconstruction of x^a. If ŷ^a shows no implant, void or streaks, the artefact branch has not
learned the artefact, and the self-reduction term cannot teach the network to remove it.
With --crop, every image is cropped to N px around x^a's implant (all slices at the same place).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from shrink_figure import crop

from madn_core.checkpoint import load_model
from pipelines.data.dataset import SliceDataset
from pipelines.io.figures import plt, save_figure

PATHS = (
    ("x^a (input)", None),
    ("x̂ (raw network)", "corrected"),
    ("y (clean)", "clean"),
    ("ŷ^a (transfer)", "clean_corrupted"),
    ("self-reduction", "self_reduction"),
    ("x^a recon", "corrupt_recon"),
)


def read_slices(data: str, channels: tuple[str, ...], count: int) -> dict[str, torch.Tensor]:
    """(count, C, H, W) x^a with the most metal pixels and y (the first metal-free ones) of the
    val split, and x^a's (count, H, W) metal masks."""
    dataset = SliceDataset(data)
    metal_pos = dataset.select(split="val", has_metal=True)
    masks = dataset.read(metal_pos, ["metal_mask"])["metal_mask"] > 0
    chosen = metal_pos[np.argsort(-masks.sum(axis=(1, 2)), kind="stable")[:count]]
    clean_pos = dataset.select(split="val", has_metal=False)[:count]
    corrupt = dataset.read(chosen, [*channels, "metal_mask"])
    clean = dataset.read(clean_pos, list(channels))
    return {
        "corrupted": torch.from_numpy(np.stack([corrupt[c] for c in channels], 1)),
        "clean": torch.from_numpy(np.stack([clean[c] for c in channels], 1)),
        "metal": torch.from_numpy(corrupt["metal_mask"] > 0),
    }


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--crop", type=int, default=0)
    args = parser.parse_args(argv)
    model = load_model(args.checkpoint)
    channels = tuple(model.config.channels)
    batch = read_slices(args.data, channels, args.slices)
    with torch.no_grad():
        outputs = model(batch["corrupted"], batch["clean"])
    outputs = {**outputs, "clean": batch["clean"]}
    implant = batch["metal"].any(0).numpy()  # every image is cropped at the same place
    rows = [(i, c) for i in range(args.slices) for c in range(len(channels))]
    fig, axes = plt.subplots(len(rows), len(PATHS), figsize=(2.2 * len(PATHS), 2.2 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (i, c) in enumerate(rows):
        for j, (title, key) in enumerate(PATHS):
            image = batch["corrupted"] if key is None else outputs[key]
            shown = image[i, c].numpy()
            shown = crop(shown, implant, args.crop // 2) if args.crop else shown
            axes[r, j].imshow(shown, cmap="gray", vmin=-1, vmax=1)
            axes[r, j].set_title(f"{title} {channels[c].upper()}", fontsize=7)
            axes[r, j].axis("off")
    fig.suptitle(f"generator paths of {args.checkpoint}", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(args.out))


if __name__ == "__main__":
    print(main())
