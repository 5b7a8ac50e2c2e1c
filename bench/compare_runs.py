"""Compare two `make quality` runs on the same test subjects: per variant and measure, the mean
over subjects of (NEW - BASE) and the two-sided paired p-value. For two settings of the same
data, e.g. the same weights re-evaluated with other inference settings (docs/model.md,
ablation 11) or a second training seed.

    python bench/compare_runs.py BASE NEW [--variants BASE_V:NEW_V] [--out FILE.md]

BASE and NEW: quality run folders (OUT of bench/quality.py, with report/ written). Only
variants, measures and subjects both runs hold are compared; No MAR and LI/NMAR are left out.
`--variants multichannel:madn` pairs BASE's multichannel with NEW's madn instead (one row per
measure, labelled with NEW's variant), e.g. a madn ablation against another run's baseline.
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


def variant_pair(text: str | None) -> tuple[str, str] | None:
    """`--variants BASE_V:NEW_V` as a pair of variant names; a one-line error otherwise."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(":"))
    if len(names) != 2 or any(name not in VARIANTS for name in names):
        raise SystemExit(f"--variants {text!r}: expected BASE_V:NEW_V, each one of {VARIANTS}")
    return names


def compared(base: Path, new: Path, variants: tuple[str, str] | None = None) -> list[dict]:
    """setting_ablation rows (method, measure, mean_diff = new - base, two-sided p, n); with
    `variants` (base's, new's), those two variants paired, labelled with new's."""
    frames = []
    for index, (run, suffix) in enumerate(((base, BASE_SUFFIX), (new, ""))):
        report = run / "report"
        if not report.is_dir():
            raise SystemExit(f"{run}: no report/ folder; expected a finished bench/quality.py OUT")
        frame = per_subject(report)
        keep = VARIANTS if variants is None else (variants[index],)
        frame = frame[frame["method"].isin(keep)].copy()
        if variants is not None:
            if frame.empty:
                raise SystemExit(f"{run}: no {variants[index]} in report/; expected one")
            frame["method"] = variants[1]
        frame["method"] = frame["method"] + suffix
        frames.append(frame)
    return setting_ablation(pd.concat(frames, ignore_index=True), BASE_SUFFIX)


def table(rows: list[dict], base: Path, new: Path, variants: tuple[str, str] | None = None) -> str:
    pair = "" if variants is None else f" ({variants[1]} - {variants[0]})"
    lines = [
        f"Paired over test subjects, {new.name} - {base.name}{pair} (two-sided p).",
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
    parser.add_argument("--variants", help="BASE_V:NEW_V, e.g. multichannel:madn")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()
    variants = variant_pair(args.variants)
    text = table(compared(args.base, args.new, variants), args.base, args.new, variants)
    print(text)
    if args.out:
        write_text_atomic(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
