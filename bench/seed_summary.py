"""Summarize `make quality` over training seeds: how each target fares from seed to seed.

One run is one training seed of each variant, tested over subjects (bench/quality.py). Whether
a target holds also depends on the seed, so a result a reviewer can accept gives each target over
several seeds: the per-seed difference and its pass, their mean and standard deviation, and how
many seeds pass. Runs must share the recipe (every setting but the seed and where it ran).

    python bench/seed_summary.py RUN [RUN ...] [--out FILE.md] [--figure FILE.png]

RUN: a quality run folder (OUT of bench/quality.py, with summary.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.io.atomic import write_text_atomic
from pipelines.io.figures import save_figure

# settings that may differ between the runs of one recipe
WHERE = {"out", "seed", "parallel", "workers", "device", "data", "variants", "docs", "resumed"}
GAINS = (  # (target, panel title) of the figure: the differences against No MAR
    ("ct_psnr_overall > No MAR", "CT PSNR overall - No MAR (dB)"),
    ("ct_psnr_near > No MAR", "CT PSNR near implant - No MAR (dB)"),
    ("sigma_implanted < No MAR", "implanted-side sigma_CT - No MAR (HU)"),
    ("mri_psnr_near > No MAR", "MRI PSNR near implant - No MAR (dB)"),
)


def load_runs(folders: list[Path]) -> list[dict[str, Any]]:
    """Each run's summary.json; refuses runs whose recipes differ."""
    runs = []
    for folder in folders:
        path = folder / "summary.json"
        if not path.is_file():
            raise SystemExit(f"{folder}: no summary.json; expected a finished bench/quality.py OUT")
        runs.append(json.loads(path.read_text()))
    seeds = [run["settings"]["seed"] for run in runs]
    for folder, seed in zip(folders, seeds, strict=True):
        if seeds.count(seed) > 1:
            raise SystemExit(f"{folder}: seed {seed} is given twice; expected one run per seed")
    first = runs[0]["settings"]
    for folder, run in zip(folders[1:], runs[1:], strict=True):
        for key in sorted(set(first) | set(run["settings"])):
            if key not in WHERE and first.get(key) != run["settings"].get(key):
                raise SystemExit(
                    f"{folder}: setting {key!r} is {run['settings'].get(key)!r}, "
                    f"expected {first.get(key)!r} as in {folders[0]} (one recipe, other seeds)"
                )
    return runs


def target_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (seed, method, target): mean_diff over subjects, p and pass."""
    rows = [{"seed": run["settings"]["seed"], **row} for run in runs for row in run["targets"]]
    return pd.DataFrame(rows)


def target_table(frame: pd.DataFrame) -> str:
    """Markdown: each target's per-seed difference (pass or MISS), mean +- sd, seeds passing."""
    seeds = sorted(frame["seed"].unique())
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [
        f"| method | target | {head} | mean +- sd | seeds passing |",
        "|---|---|" + "---|" * len(seeds) + "---|---|",
    ]
    for (method, target), group in frame.groupby(["method", "target"], sort=False):
        by_seed = group.set_index("seed")
        cells = []
        for s in seeds:
            if s not in by_seed.index:
                cells.append("")
                continue
            verdict = "pass" if by_seed.loc[s, "pass"] else "**MISS**"
            cells.append(f"{by_seed.loc[s, 'mean_diff']:+.2f} {verdict}")
        diffs = group["mean_diff"].to_numpy(float)
        spread = f"{diffs.mean():+.2f} +- {diffs.std(ddof=1):.2f}" if len(diffs) > 1 else ""
        passed = f"{int(group['pass'].sum())}/{len(group)}"
        lines.append(f"| {method} | {target} | {' | '.join(cells)} | {spread} | {passed} |")
    return "\n".join(lines)


def pass_counts(frame: pd.DataFrame) -> str:
    """One line per seed: targets passed (the stretch goal counted apart)."""
    lines = []
    for seed, group in frame.groupby("seed"):
        stretch = group["target"].str.startswith("stretch")
        main, extra = group[~stretch], group[stretch]
        lines.append(
            f"- seed {seed}: {int(main['pass'].sum())} of {len(main)} targets pass; "
            f"stretch goal met by {int(extra['pass'].sum())} of {len(extra)}"
        )
    return "\n".join(lines)


def seed_figure(frame: pd.DataFrame, runs: list[dict[str, Any]], path: Path) -> Path:
    """Per measure, each variant's difference against No MAR for every seed (dots) and their
    mean (bar); NMAR's difference as a dotted line where it applies."""
    fig, axes = plt.subplots(1, len(GAINS), figsize=(4.2 * len(GAINS), 3.6))
    methods = runs[0]["methods"]
    for ax, (target, title) in zip(axes, GAINS, strict=True):
        rows = frame[frame["target"] == target]
        names = list(dict.fromkeys(rows["method"]))
        for i, name in enumerate(names):
            values = rows[rows["method"] == name]["mean_diff"].to_numpy(float)
            ax.bar(i, values.mean(), color="0.8", width=0.6)
            ax.plot(np.full(len(values), i), values, "o", color="C0")
        measure = target.split(" ")[0]
        if measure.startswith("ct_") or measure.startswith("sigma"):
            nmar = methods["NMAR"][measure] - methods["No MAR"][measure]
            ax.axhline(nmar, color="C3", linestyle=":", label=f"NMAR {nmar:+.1f}")
            ax.legend(loc="best", fontsize=8)
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_title(title, fontsize=9)
    seeds = ", ".join(str(s) for s in sorted(frame["seed"].unique()))
    fig.suptitle(f"make quality over training seeds {seeds} (dots: seeds; bars: mean)")
    fig.tight_layout()
    return save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, help="also write the tables (markdown) here")
    parser.add_argument("--figure", type=Path, help="write the per-seed figure here")
    args = parser.parse_args()
    runs = load_runs(args.runs)
    frame = target_frame(runs)
    text = pass_counts(frame) + "\n\n" + target_table(frame)
    print(text)
    if args.out:
        write_text_atomic(args.out, text + "\n")
    if args.figure:
        print(seed_figure(frame, runs, args.figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
