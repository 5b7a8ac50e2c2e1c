"""Validation curves of recipe-ablation arms against No MAR, as one PNG (docs/model.md).

    python bench/ablation_curves.py OUT.png runs/ablation/ARM [runs/ablation/ARM ...]

Panels: CT PSNR, CT PSNR near the implant and MRI PSNR near the implant, each minus No MAR on
the same validation slices (dB), per generator step; the dashed line is No MAR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PANELS = (
    ("psnr_ct", "CT PSNR - No MAR (dB)"),
    ("psnr_ct_near", "CT PSNR near implant - No MAR (dB)"),
    ("psnr_mri_near", "MRI PSNR near implant - No MAR (dB)"),
)


def read_history(run: Path) -> list[dict[str, float]]:
    """The per-epoch validation lines of a training run's metrics.jsonl."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def steps_per_epoch(run: Path, epochs: int) -> float:
    """Generator steps per epoch, from the run's last checkpoint step count (1 if unknown)."""
    import torch

    checkpoint = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)
    return float(checkpoint.get("step", epochs)) / max(1, epochs)


def gain_curves(
    run: Path, keys: tuple[str, ...], reference: dict[str, float] | None = None
) -> dict[str, tuple[list[float], list[float]]]:
    """Per validation key: (generator steps, val/KEY minus its reference) over the run's
    validated epochs; the reference is `reference[KEY]` when given (a fixed line, e.g. a prior's
    PSNR), else the epoch's own val/nomar/KEY. The run's files are read once."""
    history = read_history(run)
    per_epoch = steps_per_epoch(run, len(history))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for key in keys:
        steps, values = [], []
        for epoch, line in enumerate(history, start=1):
            if f"val/{key}" not in line:
                continue
            base = reference[key] if reference is not None else line[f"val/nomar/{key}"]
            steps.append(line.get("epoch", epoch) * per_epoch)
            values.append(line[f"val/{key}"] - base)
        curves[key] = (steps, values)
    return curves


def main(argv: list[str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out, runs = Path(argv[0]), [Path(a) for a in argv[1:]]
    figure, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.6))
    for run in runs:
        curves = gain_curves(run, tuple(key for key, _ in PANELS))
        for axis, (key, _) in zip(axes, PANELS, strict=True):
            if curves[key][0]:
                axis.plot(*curves[key], label=run.name)
    for axis, (_, title) in zip(axes, PANELS, strict=True):
        axis.axhline(0.0, color="k", linestyle="--", linewidth=0.8)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("generator step")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
