"""Choose the inference settings that leave the weights alone (`network.correction_shrink`,
`network.correction_smooth_mm`) on the validation split: the best.ckpt of each variant of a
quality run, corrected with each setting, scored as in training (val split, slices with metal,
implant band on), plus the harm on the val split's metal-free slices (band off, as
`make quality` measures it on the test split). docs/model.md, ablation 6.

    python bench/inference_ablation.py RUN DATA [--shrink 0,0.05,0.1] [--smooth 0.75,1.5]
        [--mri-band 10,20,30] [--mri-shrink 0,0.05] [--rules soft,garrote,hard]
        [--variants adn-ct,...] [--out FILE.md]

RUN: a quality run folder (RUN/runs/<variant>/best.ckpt); DATA: its ingested dataset. Every
shrink or smoothing setting is tried with the other one off; each run's own settings are
replaced (both channels alike). An MRI band (`network.mri_band_mm`, mm) or an MRI shrink
(`network.mri_shrink`) is tried with the run's other settings as they are; variants without an
MRI channel skip the MRI shrink. Each shrink is tried under each `network.shrink_rule` of
--rules (soft by default); the MRI channel keeps the run's own `network.mri_shrink` when
--rules is given, so that the rules are compared on the CT's threshold alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import VARIANTS, harm_on_metal_free_slices, print_and_write_table, with_inference

from madn_core.checkpoint import load_model
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.training.validation import Validator

GAINS = ("psnr_ct", "psnr_ct_near", "psnr_mri", "psnr_mri_near")
KEYS = {"shrink": "network.correction_shrink", "smooth": "network.correction_smooth_mm"}


def measure(model: torch.nn.Module, dataset: SliceDataset, variant: str) -> dict[str, float]:
    """Validation gains over No MAR (dB), sigma_CT change (HU) and val-split harm (HU)."""
    prior = model.config.data.ct_prior  # a hybrid's CT input; No MAR stays the raw CT
    validator = Validator(dataset, channels_for_variant(variant), max_slices=48, ct_prior=prior)
    metrics = validator(model, 0)
    row = {g: metrics[f"val/{g}"] - metrics[f"val/nomar/{g}"] for g in GAINS}
    row["sigma_ct"] = metrics["val/sigma_ct"] - metrics["val/nomar/sigma_ct"]
    row["score"] = metrics["val/score"]
    harm = harm_on_metal_free_slices({variant: model}, dataset, split="val")[variant]
    row["harm_hu"], row["noise_hu"] = harm["harm_hu"], harm["input_muscle_noise_hu"]
    return row


def settings(args: argparse.Namespace, variant: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, overrides) per setting tried on `variant`, each with the other setting off."""
    off: dict[str, Any] = {key: 0.0 for key in KEYS.values()} | {"network.mri_shrink": None}
    if args.rules:
        off.pop("network.mri_shrink")
    tried = []
    for value in (float(v) for v in args.shrink.split(",") if v):
        for rule in (args.rules or "soft").split(","):
            label = f"shrink {value:g}" + (f" {rule}" if args.rules else "")
            tried.append((label, {**off, KEYS["shrink"]: value, "network.shrink_rule": rule}))
    for value in (float(v) for v in args.smooth.split(",") if v):
        tried.append((f"smooth {value:g}", {**off, KEYS["smooth"]: value}))
    for value in (float(v) for v in args.mri_band.split(",") if v):
        tried.append((f"MRI band {value:g} mm", {"network.mri_band_mm": value}))
    if "mri" in channels_for_variant(variant):
        for value in (float(v) for v in args.mri_shrink.split(",") if v):
            tried.append((f"MRI shrink {value:g}", {"network.mri_shrink": value}))
    return tried


def table(rows: list[dict]) -> str:
    head = "| variant | setting | score | CT | CT near | sigma_CT (HU) | MRI | MRI near |"
    lines = [head + " harm (HU) |", "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['setting']} | {r['score']:+.2f} | {r['psnr_ct']:+.2f} | "
            f"{r['psnr_ct_near']:+.2f} | {r['sigma_ct']:+.0f} | {r['psnr_mri']:+.2f} | "
            f"{r['psnr_mri_near']:+.2f} | {r['harm_hu']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("data")
    parser.add_argument("--shrink", default="0,0.0333,0.05,0.1,0.15,0.2")
    parser.add_argument("--smooth", default="")
    parser.add_argument("--mri-band", default="", help="network.mri_band_mm values (mm)")
    parser.add_argument("--mri-shrink", default="", help="network.mri_shrink values")
    parser.add_argument("--rules", default="", help="network.shrink_rule values for --shrink")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", help="write the table (markdown) and FILE.json beside it")
    args = parser.parse_args()
    dataset = SliceDataset(args.data)
    rows = []
    for variant in args.variants.split(","):
        model = load_model(Path(args.run) / "runs" / variant / "best.ckpt").eval()
        for label, overrides in settings(args, variant):
            row = measure(with_inference(model, overrides), dataset, variant)
            rows.append({"variant": variant, "setting": label, **row})
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print_and_write_table(table(rows), rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
