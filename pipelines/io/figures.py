"""Image grids as PNG files (matplotlib, headless)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pipelines.io.atomic import atomic_path


def save_image_grid(
    columns: Mapping[str, Sequence[np.ndarray | None]],
    path: str | os.PathLike[str],
    row_labels: Sequence[str] | None = None,
    value_range: tuple[float, float] | Sequence[tuple[float, float]] = (-1.0, 1.0),
    title: str | None = None,
    column_ranges: Mapping[str, tuple[float, float]] | None = None,
    outlines: Sequence[np.ndarray | None] | None = None,
) -> Path:
    """Write a grid of grey-scale images: one column per key, one row per list entry.

    columns: {"input": [img_row0, img_row1, ...], "corrected": [...], ...}, each image (H, W).
    value_range: display window, one for all rows or one per row (e.g. CT and MRI rows).
    column_ranges: display windows by column name, overriding value_range (e.g. MRI columns).
    An image given as None leaves its panel blank with "n/a" (a method that does not produce that
    modality). outlines: one (H, W) bool mask per row (or None), drawn as a red contour on every
    panel of the row (e.g. the implant).
    The PNG is written to a temporary name and renamed, so readers never see half a file.
    """
    names = list(columns)
    rows = len(columns[names[0]])
    ranges = [value_range] * rows if isinstance(value_range[0], (int, float)) else list(value_range)
    fig, axes = plt.subplots(
        rows, len(names), figsize=(2.2 * len(names), 2.2 * rows), squeeze=False
    )
    for c, name in enumerate(names):
        for r in range(rows):
            ax = axes[r][c]
            low, high = (column_ranges or {}).get(name, ranges[r])
            image = columns[name][r]
            if image is None:
                ax.set_facecolor("0.85")
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.imshow(np.asarray(image), cmap="gray", vmin=low, vmax=high)
                outline = outlines[r] if outlines is not None else None
                if outline is not None and np.any(outline):
                    ax.contour(
                        np.asarray(outline, float), levels=[0.5], colors="red", linewidths=0.7
                    )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[r], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def save_figure(fig: plt.Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write `fig` as PNG through a temporary name and rename (readers never see half a file);
    the figure is closed."""
    try:
        with atomic_path(path) as temporary:
            fig.savefig(temporary, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(path)
