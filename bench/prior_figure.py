"""Close-up of the hybrid "NMAR, then the network" (docs/model.md, ablation 15): the test
slices with most metal, cropped around the implant, as input, NMAR, the variant trained on the
corrupted CT, the same variant trained on NMAR's CT (fed NMAR's CT), and the ground truth. CT in
a soft-tissue window (-200..300 HU); with `--modality mri` the MRI channel (model range).

    python bench/prior_figure.py RAW_RUN RAW_DATA PRIOR_RUN PRIOR_DATA OUT.png
        [--variant adn-ct] [--modality ct|mri] [--rows 3] [--half 48]

RAW_RUN / PRIOR_RUN: quality run folders (RUN/runs/<variant>/best.ckpt) trained on RAW_DATA
and on PRIOR_DATA (`bench/prior_dataset.py RAW_DATA PRIOR_DATA`, or the same manifest through
`madn ingest --ct-prior nmar`), whose slices must match. NMAR's CT is PRIOR_DATA's `ct_prior`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import inference, settings, with_inference
from shrink_figure import crop, save_closeup

from madn_core.checkpoint import load_model
from pipelines.data.ct_prior import PRIOR_COLUMN
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.data.intensity import unit_to_hu
from pipelines.training.validation import correct_batches

COLUMNS = ["ct", "mri", "ct_clean", "mri_clean", "metal_mask", "ct_min", "ct_max"]


def test_slices(raw: SliceDataset, prior: SliceDataset) -> dict[str, dict[str, np.ndarray]]:
    """Both datasets' test slices with metal ({"raw": columns, "prior": columns}), checked to
    be the same slices in the same order."""
    positions = raw.select(split="test", has_metal=True)
    if not np.array_equal(positions, prior.select(split="test", has_metal=True)):
        raise SystemExit(f"{prior.location}: its test slices differ from {raw.location}'s")
    read = {
        "raw": raw.read(positions, COLUMNS),
        "prior": prior.read(positions, [*COLUMNS, PRIOR_COLUMN]),
    }
    if not np.array_equal(read["raw"]["ct_clean"], read["prior"]["ct_clean"]):
        raise SystemExit(f"{prior.location} was not made from {raw.location}")
    return read


def network_output(
    run: str, variant: str, data: dict[str, np.ndarray], modality: str, ct_column: str = "ct"
) -> np.ndarray:
    """(N, H, W) in [-1, 1]: the variant's best.ckpt (make quality's inference settings) on
    `data`'s slices (its CT input from `ct_column`), the `modality` channel."""
    model = with_inference(
        load_model(Path(run) / "runs" / variant / "best.ckpt"), inference(settings())
    )
    channels = channels_for_variant(variant)
    images = np.stack([data[ct_column if c == "ct" else c] for c in channels], axis=1)
    output = correct_batches(model, images, metal=data["metal_mask"] > 0)
    return output[:, channels.index(modality)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("raw_run", "raw_data", "prior_run", "prior_data", "out"):
        parser.add_argument(name)
    parser.add_argument("--variant", default="adn-ct")
    parser.add_argument("--modality", choices=("ct", "mri"), default="ct")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--half", type=int, default=48)
    args = parser.parse_args()
    if args.modality not in channels_for_variant(args.variant):
        raise SystemExit(f"--variant {args.variant} does not correct the {args.modality}")
    data = test_slices(SliceDataset(args.raw_data), SliceDataset(args.prior_data))
    metal = data["raw"]["metal_mask"] > 0
    pick = np.argsort(-metal.reshape(len(metal), -1).sum(axis=1))[: args.rows]
    data = {k: {c: v[pick] for c, v in d.items()} for k, d in data.items()}
    window = (float(data["raw"]["ct_min"][0]), float(data["raw"]["ct_max"][0]))
    mri = args.modality == "mri"

    def shown(images: np.ndarray) -> list[np.ndarray]:
        values = images if mri else unit_to_hu(images, *window)
        return [crop(v, m, args.half) for v, m in zip(values, metal[pick], strict=True)]

    m = args.modality
    columns = {"input (No MAR)": shown(data["raw"][m])}
    if not mri:
        columns["NMAR"] = shown(data["prior"][PRIOR_COLUMN])
    columns[f"{args.variant}"] = shown(network_output(args.raw_run, args.variant, data["raw"], m))
    prior_output = network_output(args.prior_run, args.variant, data["prior"], m, PRIOR_COLUMN)
    columns[f"NMAR, then {args.variant}"] = shown(prior_output)
    columns["ground truth"] = shown(data["raw"][f"{m}_clean"])
    save_closeup(columns, args.out, metal[pick], mri, args.half)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
