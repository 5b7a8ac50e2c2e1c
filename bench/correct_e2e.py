"""`madn correct` end to end on synthesized test volumes, against No MAR and NMAR: what a user
who corrects a NIfTI scan gets, next to what the quality benchmark measured on the same
subjects' ingested slices (docs/model.md, ablation 15).

    python bench/correct_e2e.py MODEL SYNTH SUBJECT [SUBJECT ...] [--metal-mask] [--out DIR]

MODEL: a checkpoint; SYNTH: a `madn synth` folder (SYNTH/<subject>/ct.nii.gz, ct_clean.nii.gz,
metal_mask.nii.gz, mri.nii.gz). Each subject's CT goes through `madn correct` (with
`--metal-mask` its own metal mask is passed on; two-channel models get its MRI too). Per slice
with metal: the RMSE in HU against the clean CT, both clipped to -1000..2000 HU (the models'
window), over the pixels within 30 mm of the metal (metal excluded), for the input, NMAR with
the true metal mask, NMAR with the metal `madn correct` finds without one (`segment_metal`),
and the corrected volume.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from madn_core.checkpoint import load_model
from pipelines.baselines.mar import nmar
from pipelines.baselines.metal import segment_metal
from pipelines.data.dataset import channels_for_variant
from tune.cli import main as madn

NEAR_MM = 30.0
WINDOW_HU = (-1000.0, 2000.0)


def array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)


def near_rmse(image: np.ndarray, clean: np.ndarray, band: np.ndarray) -> float:
    """RMSE (HU) of one (H, W) slice against the clean one inside `band`, both windowed."""
    error = np.clip(image, *WINDOW_HU) - np.clip(clean, *WINDOW_HU)
    return float(np.sqrt(np.mean(error[band] ** 2)))


def subject_rows(
    model: str, folder: Path, out: Path, with_mask: bool, with_mri: bool
) -> list[list[float]]:
    """[input, NMAR, NMAR without a mask, madn correct] near-implant RMSE (HU) per slice with
    metal of a subject;
    `with_mri`: the model takes the MRI too (synthesized MRIs are registered)."""
    argv = ["correct", "--model", model, "--ct", str(folder / "ct.nii.gz"), "--out", str(out)]
    if with_mri:
        argv += ["--mri", str(folder / "mri.nii.gz")]
    argv += ["--device", "cpu"] + (["--metal-mask", str(folder / "metal_mask.nii.gz")] * with_mask)
    if madn(argv) != 0:
        raise SystemExit(f"madn correct failed on {folder}")
    raw, clean = array(folder / "ct.nii.gz"), array(folder / "ct_clean.nii.gz")
    metal = array(folder / "metal_mask.nii.gz") > 0
    corrected = array(out / "ct_corrected.nii.gz")
    spacing = sitk.ReadImage(str(folder / "ct.nii.gz")).GetSpacing()[0]
    reference = nmar(raw, metal, pixel_mm=spacing)
    unmasked = nmar(raw, segment_metal(raw), pixel_mm=spacing)
    rows = []
    for z in np.flatnonzero(metal.reshape(len(metal), -1).any(axis=1)):
        distance = ndimage.distance_transform_edt(~metal[z]) * spacing
        band = (distance > 0) & (distance <= NEAR_MM)
        images = (raw, reference, unmasked, corrected)
        rows.append([near_rmse(x[z], clean[z], band) for x in images])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("synth", type=Path)
    parser.add_argument("subjects", nargs="+")
    parser.add_argument("--metal-mask", action="store_true", help="pass each true metal mask")
    parser.add_argument("--out", type=Path, help="keep the corrected volumes here")
    args = parser.parse_args()
    with_mri = "mri" in channels_for_variant(load_model(args.model).config.variant)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        rows = []
        for subject in args.subjects:
            folder, target = args.synth / subject, out / subject
            rows += subject_rows(args.model, folder, target, args.metal_mask, with_mri)
    table = np.array(rows)
    raw, reference, unmasked, corrected = table.mean(axis=0)
    better, better_unmasked = (int((table[:, 3] < table[:, k]).sum()) for k in (1, 2))
    print(
        f"RMSE within {NEAR_MM:g} mm of the metal, mean over {len(table)} slices: No MAR "
        f"{raw:.1f} HU, NMAR {reference:.1f} HU, NMAR without a mask {unmasked:.1f} HU, "
        f"madn correct {corrected:.1f} HU (better than NMAR on {better} of {len(table)} "
        f"slices, than NMAR without a mask on {better_unmasked})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
