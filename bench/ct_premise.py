"""Does a two-channel model's MRI correction use the CT? The multimodal premise, tested at
inference: the trained multichannel and madn models of quality runs correct the test split's
slices with metal while their CT input is swapped, and the MRI gain over No MAR is compared
with the gain under the CT they were trained on (docs/model.md, ablation 14).

    python bench/ct_premise.py DATA RUN [RUN ...] [--variants multichannel,madn]
        [--blur-mm 10] [--out FILE.md]

CT inputs (the MRI input, the metal masks and the weights never change):
- `artefact`: the corrupted CT, as trained and deployed;
- `blurred`: that CT smoothed by a Gaussian of --blur-mm (mm): intensities and the body
  outline stay, the anatomy and the streaks go;
- `nmar`: the CT corrected by NMAR first (fewer streaks, the anatomy under them kept);
- `clean`: the artefact-free CT (an oracle no user has).
If the MRI gain falls with `blurred` and rises with `nmar` / `clean`, the MRI channel reads the
CT's anatomy. Each RUN is a quality run folder (RUN/runs/<variant>/best.ckpt) trained on DATA;
each (run, variant, input) gives the mean over implanted test subjects of the per-subject MRI
PSNR gain (dB) overall and near the implant, with a paired t-test against `artefact`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import inference, print_and_write_table, settings, with_inference

from madn_core.checkpoint import load_model
from madn_core.model import MADN
from pipelines.data.ct_prior import prior_of_slices
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.training.validation import Validator

INPUTS = ("artefact", "blurred", "nmar", "clean")
GAINS = ("psnr_mri", "psnr_mri_near", "psnr_ct", "psnr_ct_near")


def swapped_ct(validator: Validator, which: str, blur_mm: float) -> np.ndarray:
    """(N, H, W) in [-1, 1]: the CT input `which` (module doc) for the validator's slices."""
    data = validator.data
    if which == "artefact":
        return data["ct"]
    if which == "clean":
        return data["ct_clean"]
    if which == "blurred":
        return np.stack(
            [
                ndimage.gaussian_filter(ct, blur_mm / float(spacing))
                for ct, spacing in zip(data["ct"], data["spacing_x"], strict=True)
            ]
        ).astype(np.float32)
    return prior_of_slices("nmar", data["ct"], validator.metal, data["spacing_x"], validator.window)


def subject_gains(
    model: MADN, validator: Validator, cts: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """{input: {gain: dB over No MAR}} for one subject's validator, its CT input swapped for
    each of `cts` ({input: (N, H, W) from `swapped_ct`})."""
    artefact_inputs = validator.inputs.copy()
    result = {}
    for which in INPUTS:
        validator.inputs = artefact_inputs.copy()
        validator.inputs[:, 0] = cts[which]
        metrics = validator(model, 0)
        result[which] = {g: metrics[f"val/{g}"] - metrics[f"val/nomar/{g}"] for g in GAINS}
    validator.inputs = artefact_inputs
    return result


def summarise(per_subject: list[dict[str, dict[str, float]]]) -> list[dict[str, float | str]]:
    """Per input: the mean gains, and paired p against `artefact` (two-sided)."""
    rows = []
    for which in INPUTS:
        row: dict[str, float | str] = {"input": which}
        for gain in GAINS:
            values = np.array([s[which][gain] for s in per_subject])
            base = np.array([s["artefact"][gain] for s in per_subject])
            row[gain] = float(values.mean())
            if which == "artefact":
                row[f"p_{gain}"] = 1.0
            elif len(values) < 2:
                row[f"p_{gain}"] = float("nan")  # no test on one subject
            else:
                row[f"p_{gain}"] = float(stats.ttest_rel(values, base).pvalue)
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| run | variant | CT input | MRI | MRI near (p vs artefact) | CT | CT near |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = "" if r["input"] == "artefact" else f" (p {r['p_psnr_mri_near']:.2g})"
        lines.append(
            f"| {r['run']} | {r['variant']} | {r['input']} | {r['psnr_mri']:+.2f} | "
            f"{r['psnr_mri_near']:+.2f}{p} | {r['psnr_ct']:+.2f} | {r['psnr_ct_near']:+.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--variants", default="multichannel,madn")
    parser.add_argument("--blur-mm", type=float, default=10.0)
    parser.add_argument("--out", help="write the table (markdown) and FILE.json beside it")
    args = parser.parse_args()
    dataset = SliceDataset(args.data)
    subjects = [
        s
        for s in dataset.subjects("test")
        if len(dataset.select(split="test", has_metal=True, subject=s))
    ]
    validators = [Validator(dataset, ("ct", "mri"), split="test", subject=s) for s in subjects]
    cts = [{w: swapped_ct(v, w, args.blur_mm) for w in INPUTS} for v in validators]  # once each
    rows = []
    for run in args.runs:
        for variant in args.variants.split(","):
            if channels_for_variant(variant) != ("ct", "mri"):
                raise SystemExit(f"--variants: {variant} has no CT and MRI input to swap")
            model = load_model(Path(run) / "runs" / variant / "best.ckpt")
            model = with_inference(model, inference(settings()))  # make quality's band, shrink
            per_subject = [subject_gains(model, v, c) for v, c in zip(validators, cts, strict=True)]
            for row in summarise(per_subject):
                rows.append({"run": Path(run).name, "variant": variant, **row})
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    print_and_write_table(table(rows), rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
