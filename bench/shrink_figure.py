"""Close-up of the shrunk change (docs/model.md, ablation 6): CT around the implant of the test
slices with most metal, as input, each CT model at each `network.correction_shrink`, and the
ground truth, in a soft-tissue window (-200..300 HU); with `--modality mri` the MRI channel
instead (its [-1, 1] model range), for the models that correct it.

    python bench/shrink_figure.py RUN DATA OUT.png [--shrinks 0.1,0.0333,0]
        [--variants adn-ct,multichannel,madn] [--rows 3] [--half 48] [--modality ct|mri]
        [--base RUN2 --base-label LABEL]

RUN2: another quality run on the same data; its models come first, labelled, e.g. the recipe
before a change (docs/model.md, ablation 18).

RUN: a quality run folder (RUN/runs/<variant>/best.ckpt); DATA: its ingested dataset.
"""

from __future__ import annotations

import argparse
import sys
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import with_inference

from madn_core.checkpoint import load_model
from pipelines.data.ct_prior import PRIOR_COLUMN, model_ct
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.data.intensity import unit_to_hu
from pipelines.io.figures import save_image_grid
from pipelines.training.validation import correct_batches

WINDOW_HU = (-200.0, 300.0)


def crop(image: np.ndarray, metal: np.ndarray, half: int) -> np.ndarray:
    """(2 half, 2 half) crop of (H, W) `image` centred on the metal's centroid."""
    rows, cols = np.nonzero(metal)
    r = int(np.clip(rows.mean(), half, image.shape[0] - half))
    c = int(np.clip(cols.mean(), half, image.shape[1] - half))
    return image[r - half : r + half, c - half : c + half]


def save_closeup(
    columns: dict[str, list[np.ndarray]], out: str, metal: np.ndarray, mri: bool, half: int
) -> None:
    """Write the close-up grid: `columns` of cropped images, one row per (H, W) bool `metal`
    mask (its crop outlined), CT in WINDOW_HU or the MRI in its model range."""
    save_image_grid(
        columns,
        out,
        row_labels=[f"test slice {i + 1}" for i in range(len(metal))],
        value_range=(-1.0, 1.0) if mri else WINDOW_HU,
        title="MRI near the implant" if mri else "CT near the implant, -200..300 HU",
        outlines=[crop(m, m, half) for m in metal],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--shrinks", default="0.1,0")
    parser.add_argument("--variants", default="", help="default: the models of --modality")
    parser.add_argument("--modality", choices=("ct", "mri"), default="ct")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--half", type=int, default=48)
    parser.add_argument("--base", help="another quality run: its same variants first, labelled")
    parser.add_argument("--base-label", default="base", help="the label of --base's columns")
    args = parser.parse_args()
    dataset = SliceDataset(args.data)
    positions = dataset.select(split="test", has_metal=True)
    names = ["ct", "mri", "ct_clean", "mri_clean", "metal_mask", "ct_min", "ct_max", "spacing_x"]
    data = dataset.read(positions, names + sorted({PRIOR_COLUMN} & dataset.columns))
    metal = data["metal_mask"] > 0
    pick = np.argsort(-metal.reshape(len(metal), -1).sum(axis=1))[: args.rows]
    window = (float(data["ct_min"][0]), float(data["ct_max"][0]))
    mri = args.modality == "mri"
    default = "adn-mr,multichannel,madn" if mri else "adn-ct,multichannel,madn"
    args.variants = args.variants or default

    def hu(images: np.ndarray) -> list[np.ndarray]:
        """CT in HU (MRI in its model range), cropped around each picked slice's metal."""
        pairs = zip(images, pick, strict=True)
        shown = (lambda x: x) if mri else (lambda x: unit_to_hu(x, *window))
        return [crop(shown(image), metal[i], args.half) for image, i in pairs]

    columns = {"input (No MAR)": hu(data[args.modality][pick])}
    runs = [(args.base, f", {args.base_label}")] if args.base else []
    for (run, label), variant in product([*runs, (args.run, "")], args.variants.split(",")):
        model = load_model(Path(run) / "runs" / variant / "best.ckpt").eval()
        channels = channels_for_variant(variant)
        given = {"ct": model_ct(dataset, model.config.data.ct_prior, data), "mri": data["mri"]}
        images = np.stack([given[c][pick] for c in channels], axis=1)
        for shrink in (float(v) for v in args.shrinks.split(",")):
            corrector = with_inference(model, {"network.correction_shrink": shrink})
            output = correct_batches(corrector, images, metal=metal[pick])
            output = output[:, channels.index(args.modality)]
            columns[f"{variant}{label}, shrink {shrink:g}"] = hu(output)
    columns["ground truth"] = hu(data[f"{args.modality}_clean"][pick])
    save_closeup(columns, args.out, metal[pick], mri, args.half)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
