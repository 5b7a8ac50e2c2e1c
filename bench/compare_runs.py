"""Compare two `make quality` runs on the same test subjects: per variant and measure, the mean
over subjects of (NEW - BASE) and the two-sided paired p-value. For two settings of the same
data, e.g. the same weights re-evaluated with other inference settings (docs/model.md,
ablation 11) or a second training seed.

    python bench/compare_runs.py BASE NEW [--out FILE.md]

BASE and NEW: quality run folders (OUT of bench/quality.py, with report/ written). Only
variants, measures and subjects both runs hold are compared; No MAR and LI/NMAR are left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import VARIANTS, per_subject, setting_ablation

from pipelines.io.atomic import write_text_atomic

BASE_SUFFIX = " (base)"


def compared(base: Path, new: Path) -> list[dict]:
    """setting_ablation rows (method, measure, mean_diff = new - base, two-sided p, n)."""
    frames = []
    for run, suffix in ((base, BASE_SUFFIX), (new, "")):
        report = run / "report"
        if not report.is_dir():
            raise SystemExit(f"{run}: no report/ folder; expected a finished bench/quality.py OUT")
        frame = per_subject(report)
        frame = frame[frame["method"].isin(VARIANTS)].copy()
        frame["method"] = frame["method"] + suffix
        frames.append(frame)
    return setting_ablation(pd.concat(frames, ignore_index=True), BASE_SUFFIX)


def table(rows: list[dict], base: Path, new: Path) -> str:
    lines = [
        f"Paired over test subjects, {new.name} - {base.name} (two-sided p).",
        "",
        "| variant | measure | new - base | p | n |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['measure']} | {r['mean_diff']:+.3f} | {r['p']:.3g} | {r['n']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()
    text = table(compared(args.base, args.new), args.base, args.new)
    print(text)
    if args.out:
        write_text_atomic(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
