"""Metal segmentation without a mask, measured: how close `segment_metal` comes to the true metal
of synthesized subjects, and what NMAR gives with it (docs/model.md, "Metal without a mask").

    python bench/metal_segmentation.py SYNTH SUBJECT [SUBJECT ...] [--fractions 0,0.5]
        [--clip-hu 3071]

SYNTH: a `madn synth` folder (SYNTH/<subject>/ct.nii.gz, ct_clean.nii.gz, metal_mask.nii.gz).
One row for the true mask, then one per edge fraction (0: the plain 2500 HU threshold): Dice
against the true metal (mean and minimum over subjects), voxels outside the true metal per
subject, and NMAR's RMSE within 30 mm of the metal (as bench/correct_e2e.py measures it).
`--clip-hu`: clip the CT there first, as a scanner on the standard 12-bit scale does (3071 HU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from correct_e2e import NEAR_MM, array, near_rmse

from pipelines.baselines.mar import nmar
from pipelines.baselines.metal import segment_metal


def dice(found: np.ndarray, truth: np.ndarray) -> float:
    return float(2 * (found & truth).sum() / max(found.sum() + truth.sum(), 1))


def nmar_rmse(
    ct: np.ndarray, clean: np.ndarray, truth: np.ndarray, mask: np.ndarray, spacing: float
) -> list[float]:
    """NMAR with `mask` (Z, H, W) bool: RMSE (HU) within NEAR_MM of the true metal, per slice
    with metal."""
    corrected = nmar(ct, mask, pixel_mm=spacing)
    rmse = []
    for z in np.flatnonzero(truth.reshape(len(truth), -1).any(axis=1)):
        distance = ndimage.distance_transform_edt(~truth[z]) * spacing
        band = (distance > 0) & (distance <= NEAR_MM)
        rmse.append(near_rmse(corrected[z], clean[z], band))
    return rmse


def measure(
    synth: Path, subjects: list[str], fractions: list[float], clip_hu: float = np.inf
) -> list[list]:
    """Rows [segmentation, Dice mean, Dice min, extra voxels per subject, NMAR RMSE (HU)],
    on CTs clipped at `clip_hu`."""
    names = ["true mask"] + [f"edge fraction {f:g}" for f in fractions]
    rows: dict[str, tuple[list, list, list]] = {name: ([], [], []) for name in names}
    for subject in subjects:
        folder = synth / subject
        ct = np.minimum(array(folder / "ct.nii.gz"), clip_hu)
        clean = array(folder / "ct_clean.nii.gz")
        truth = array(folder / "metal_mask.nii.gz") > 0
        spacing = sitk.ReadImage(str(folder / "ct.nii.gz")).GetSpacing()[0]
        masks = [truth] + [segment_metal(ct, edge_fraction=f) for f in fractions]
        for (overlap, extra, rmse), mask in zip(rows.values(), masks, strict=True):
            overlap.append(dice(mask, truth))
            extra.append(int((mask & ~truth).sum()))
            rmse += nmar_rmse(ct, clean, truth, mask, spacing)
    return [
        [name, np.mean(d), np.min(d), np.mean(e), np.mean(r)] for name, (d, e, r) in rows.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("synth", type=Path)
    parser.add_argument("subjects", nargs="+")
    parser.add_argument("--fractions", default="0,0.4,0.5,0.6", help="comma-separated")
    parser.add_argument("--clip-hu", type=float, default=np.inf, help="clip the CT (HU)")
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    print("| segmentation | Dice mean | Dice min | voxels outside the metal | NMAR RMSE (HU) |")
    print("|---|---|---|---|---|")
    rows = measure(args.synth, args.subjects, fractions, args.clip_hu)
    for name, mean, low, extra, rmse in rows:
        print(f"| {name} | {mean:.3f} | {low:.3f} | {extra:.0f} | {rmse:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
