"""Figures of `pipelines.evaluation.evaluate`: sigma_CT and Dice box plots, and the Fig.-2
comparison grid.

All written as PNG through a temporary name (matplotlib, headless).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipelines.data.intensity import hu_to_unit
from pipelines.io.figures import save_figure, save_image_grid

CT_DISPLAY_HU = (-250.0, 350.0)


def _boxes(ax: plt.Axes, frame: pd.DataFrame, value: str, methods: Sequence[str]) -> None:
    data = [frame.loc[frame["method"] == m, value].dropna().to_numpy() for m in methods]
    positions = [i for i, d in enumerate(data) if len(d)]
    if positions:
        ax.boxplot([data[i] for i in positions], positions=positions, widths=0.6)
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=7)


def sigma_boxplot(cases: pd.DataFrame, methods: Sequence[str], path: Path) -> Path:
    """sigma_CT (HU) per method: a panel per muscle (columns) and side (rows)."""
    muscles = list(dict.fromkeys(cases["muscle"]))
    sides = ["implanted", "contralateral"]
    fig, axes = plt.subplots(
        len(sides), len(muscles), figsize=(2.6 * len(muscles), 5.6), squeeze=False
    )
    for r, side in enumerate(sides):
        for c, muscle in enumerate(muscles):
            ax = axes[r][c]
            part = cases[(cases["muscle"] == muscle) & (cases["side"] == side)]
            _boxes(ax, part, "sigma_hu", methods)
            ax.set_title(f"{muscle}, {side}", fontsize=9)
            if c == 0:
                ax.set_ylabel("sigma_CT (HU)")
    fig.suptitle("Muscle noise in CT (lower is better)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def dice_boxplot(cases: pd.DataFrame, methods: Sequence[str], path: Path) -> Path:
    """Dice of propagated labels per method, a panel per muscle."""
    muscles = list(dict.fromkeys(cases["muscle"]))
    fig, axes = plt.subplots(1, len(muscles), figsize=(2.6 * len(muscles), 3.2), squeeze=False)
    for c, muscle in enumerate(muscles):
        ax = axes[0][c]
        _boxes(ax, cases[cases["muscle"] == muscle], "dice", methods)
        ax.set_title(muscle, fontsize=9)
        if c == 0:
            ax.set_ylabel("Dice")
    fig.suptitle("MRI segmentation propagation (higher is better)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def comparison_grid(
    outputs: Mapping[str, Mapping[str, Mapping[str, np.ndarray | None]]],
    subjects: Sequence[Any],
    methods: Sequence[str],
    path: Path,
) -> Path:
    """The paper's Fig. 2 for the test slice with the most metal: a column per method (input
    first, ground truth last when known), a CT row (soft-tissue window) and an MRI row, the
    implant outlined in red. `subjects` carry name, metal, ct_window, ct_clean, mri_clean."""
    best, best_slice, most = subjects[0], 0, -1
    for subject in subjects:
        counts = subject.metal.reshape(len(subject.metal), -1).sum(axis=1)
        if counts.max() > most:
            best, best_slice, most = subject, int(counts.argmax()), int(counts.max())
    columns: dict[str, list[np.ndarray | None]] = {}
    for method in methods:
        result = outputs[method][best.name]
        label = "input (No MAR)" if method == methods[0] else method
        columns[label] = [
            None if result[m] is None else result[m][best_slice] for m in ("ct", "mri")
        ]
    if best.ct_clean is not None:
        columns["ground truth"] = [best.ct_clean[best_slice], best.mri_clean[best_slice]]
    low, high = (float(v) for v in hu_to_unit(np.array(CT_DISPLAY_HU), *best.ct_window))
    mask = best.metal[best_slice]
    return save_image_grid(
        columns,
        path,
        row_labels=["CT", "MRI"],
        value_range=[(low, high), (-1.0, 1.0)],
        title=f"{best.name}, slice {best_slice}: implant outlined in red",
        outlines=[mask, mask],
    )
