"""A PNG grid of synthetic subjects: clean CT, artefact CT, clean MRI, artefact MRI, labels."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pipelines.io.figures import save_image_grid


def synth_figure(
    manifest: str | os.PathLike[str], out_png: str | os.PathLike[str], subjects: int = 3
) -> Path:
    """One row per subject (implanted ones first), at the slice with the most metal (else the
    middle slice)."""
    manifest = Path(manifest)
    with manifest.open(newline="") as stream:
        rows = sorted(csv.DictReader(stream), key=lambda r: -int(r["has_metal"]))[:subjects]
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ("clean CT", "artefact CT", "clean MRI", "artefact MRI", "labels")
    }
    names = []
    for row in rows:

        def read(key: str, row: dict = row) -> np.ndarray:
            return sitk.GetArrayFromImage(sitk.ReadImage(str(manifest.parent / row[key])))

        metal = read("metal_mask")
        k = (
            int(metal.reshape(metal.shape[0], -1).sum(1).argmax())
            if metal.any()
            else metal.shape[0] // 2
        )
        for column, key in zip(
            columns, ("ct_clean", "ct", "mri_clean", "mri", "labels"), strict=True
        ):
            columns[column].append(read(key)[k])
        names.append(f"{row['subject_id']} {row['implant_side'] or 'no metal'}")
    windows = {"clean MRI": (0.0, 1.2), "artefact MRI": (0.0, 1.2), "labels": (0.0, 4.0)}
    return save_image_grid(
        columns,
        out_png,
        row_labels=names,
        value_range=(-400.0, 600.0),
        column_ranges=windows,
        title="synthetic subjects (CT window -400..600 HU)",
    )
