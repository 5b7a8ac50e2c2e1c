"""Validation curves of models trained after a classical MAR (NMAR, LI), several seeds per arm,
against the prior itself: does the network stay above the CT it was given? (docs/model.md,
ablation 16)

    python bench/prior_seed_curves.py --data PRIOR_DATASET --out OUT.png \
        LABEL=RUN[,RUN...] [LABEL=RUN[,RUN...] ...]

PRIOR_DATASET: the dataset with the `ct_prior` column the runs trained on (or a plain one with
--prior nmar|li, the prior then computed); RUN: a training run folder (metrics.jsonl,
last.ckpt), e.g. runs/hyb_v2_s7_mc/runs/multichannel. The prior's PSNR comes from the same
validation slices the runs were validated on (the first MAX_VAL_SLICES slices with metal of the
val split, as bench/quality.py trains), so runs trained before the validator logged
`val/prior/...`, or on a copy whose CT column was the prior, compare alike.

Panels, per generator step: CT PSNR overall and near the implant minus the prior's (dB, 0: the
prior), and MRI PSNR near the implant minus No MAR. One colour per LABEL, one line per run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_curves import gain_curves

MAX_VAL_SLICES = 48  # bench/quality.py's train_model(max_val_slices=48)
PANELS = (
    ("psnr_ct", "prior", "CT PSNR - prior (dB)"),
    ("psnr_ct_near", "prior", "CT PSNR near implant - prior (dB)"),
    ("psnr_mri_near", "nomar", "MRI PSNR near implant - No MAR (dB)"),
)


def prior_metrics(data: str, prior: str) -> dict[str, float]:
    """The prior's CT metrics on the validation slices (Validator.prior_baseline)."""
    from pipelines.data.dataset import SliceDataset
    from pipelines.training.validation import Validator

    dataset = SliceDataset(data)
    validator = Validator(dataset, ("ct",), max_slices=MAX_VAL_SLICES, ct_prior=prior)
    return validator.prior_baseline


def arms(specs: list[str]) -> dict[str, list[Path]]:
    """LABEL=RUN[,RUN...] arguments as {label: run folders}; a one-line error for a bad one."""
    result: dict[str, list[Path]] = {}
    for spec in specs:
        label, _, runs = spec.partition("=")
        folders = [Path(r) for r in runs.split(",") if r]
        if not label or not folders:
            raise SystemExit(f"{spec!r}: expected LABEL=RUN[,RUN...]")
        for folder in folders:
            if not (folder / "metrics.jsonl").is_file():
                raise SystemExit(f"{folder}: no metrics.jsonl; expected a training run folder")
        result[label] = folders
    return result


def curves(run: Path, prior: dict[str, float]) -> dict[str, tuple[list, list]]:
    """Per panel key: (generator steps, metric - its reference) over the run's validated
    epochs; the reference is the prior's PSNR or the epoch's No MAR (PANELS)."""
    against_prior = tuple(key for key, reference, _ in PANELS if reference == "prior")
    against_input = tuple(key for key, reference, _ in PANELS if reference == "nomar")
    return gain_curves(run, against_prior, prior) | gain_curves(run, against_input)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the dataset the runs trained on")
    parser.add_argument("--prior", default="nmar", choices=("nmar", "li"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("arms", nargs="+", metavar="LABEL=RUN[,RUN...]")
    args = parser.parse_args()
    groups = arms(args.arms)
    prior = prior_metrics(args.data, args.prior)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.8))
    for index, (label, runs) in enumerate(groups.items()):
        colour = f"C{index}"
        for n, run in enumerate(runs):
            run_curves = curves(run, prior)
            for axis, (key, _, _) in zip(axes, PANELS, strict=True):
                steps, values = run_curves[key]
                axis.plot(steps, values, color=colour, lw=1, label=label if n == 0 else None)
    for axis, (_, _, title) in zip(axes, PANELS, strict=True):
        axis.axhline(0.0, color="k", linestyle="--", linewidth=0.8)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("generator step")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(args.out, json.dumps({k: round(v, 3) for k, v in prior.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
