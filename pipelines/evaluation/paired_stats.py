"""Summaries of per-case measurements with paired two-tailed t-tests against a reference method.

Input is a long table (pandas DataFrame) with one row per (method, group..., case) and a value
column: e.g. sigma_CT in HU per (method, muscle, side, subject), or Dice per (method, muscle,
source->target pair). For each method and group the summary gives n, mean, std (ddof 1), and the
p-value of `scipy.stats.ttest_rel` against the reference method on the cases both have (NaN for
the reference itself or fewer than 2 paired cases), as in the paper's Figs. 3 and 4.

Beside the raw p-value: `p_holm`, Holm's step-down correction over every test of the summary
(all methods x groups of one table form one family: e.g. 8 muscle/side cells x 3 methods), and
`effect_dz`, the paired effect size (Cohen's d_z = mean of the paired differences / their
standard deviation, sign: method - reference). `significant` is raw p < 0.05 (the paper's
marker `*`); `significant_holm` is p_holm < 0.05 (marker `†` in the tables).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

SIGNIFICANCE = 0.05


def paired_summary(
    long: pd.DataFrame,
    value: str,
    groups: Sequence[str],
    case: str,
    reference: str,
    methods: Sequence[str],
) -> pd.DataFrame:
    """One row per (method, *groups) present in `long`: n, mean, std, p_vs_reference,
    significant."""
    rows = []
    keys = list(groups)
    for group_values, part in long.groupby(keys, sort=False) if keys else [((), long)]:
        group_values = group_values if isinstance(group_values, tuple) else (group_values,)
        by_method = {m: part[part["method"] == m].set_index(case)[value].dropna() for m in methods}
        ref = by_method.get(reference, pd.Series(dtype=float))
        for method in methods:
            if not (part["method"] == method).any():
                continue  # the method does not produce this group (e.g. LI has no MRI)
            values = by_method[method]
            p_value, effect = math.nan, math.nan
            if method != reference:
                common = values.index.intersection(ref.index)
                if len(common) >= 2:
                    a, b = values.loc[common].to_numpy(), ref.loc[common].to_numpy()
                    if np.any(a != b):
                        p_value = float(stats.ttest_rel(a, b).pvalue)
                        effect = paired_effect_size(a, b)
            rows.append(
                {
                    "method": method,
                    **dict(zip(keys, group_values, strict=True)),
                    "n": len(values),
                    "mean": float(values.mean()) if len(values) else math.nan,
                    "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "p_vs_reference": p_value,
                    "effect_dz": effect,
                    "significant": bool(p_value < SIGNIFICANCE),
                }
            )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["p_holm"] = holm(frame["p_vs_reference"].to_numpy())
        frame["significant_holm"] = frame["p_holm"] < SIGNIFICANCE
    return frame


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values of one family (NaN entries are not tests and stay
    NaN): the k-th smallest of m becomes max over j <= k of min(1, (m - j + 1) p_(j))."""
    p = np.asarray(p_values, float)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def paired_effect_size(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's d_z of paired samples (n,): mean(a - b) / std(a - b, ddof 1); NaN if constant."""
    difference = np.asarray(a, float) - np.asarray(b, float)
    spread = float(difference.std(ddof=1)) if len(difference) > 1 else 0.0
    return float(difference.mean() / spread) if spread > 0 else math.nan


def markdown_table(
    summary: pd.DataFrame, column_keys: Sequence[str], methods: Sequence[str], digits: int = 1
) -> str:
    """Methods as rows, one column per combination of `column_keys` values, cells "mean ± std"
    with `*` where the paired test against the reference gives p < 0.05 and `†` where it
    still does after Holm's correction over the table."""
    keys = list(column_keys)
    combos = list(dict.fromkeys(tuple(r) for r in summary[keys].itertuples(index=False)))
    header = ["method", *[" ".join(str(v) for v in combo) for combo in combos]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        cells = [method]
        for combo in combos:
            match = summary["method"] == method
            for key, v in zip(keys, combo, strict=True):
                match &= summary[key] == v
            row = summary[match]
            if row.empty or not math.isfinite(row["mean"].iloc[0]):
                cells.append("n/a")
                continue
            mean, std = row["mean"].iloc[0], row["std"].iloc[0]
            cell = f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if math.isfinite(std) else "")
            if row["significant"].iloc[0]:
                cell += " *"
            if "significant_holm" in row and bool(row["significant_holm"].iloc[0]):
                cell += "†"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
