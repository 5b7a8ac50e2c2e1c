"""Pelvis phantoms at the level of the hip joints, with optional total hip replacements.

Coordinates: arrays are (z, y, x) = (slice, row, column). x runs from the subject's right to
left, y from anterior to posterior, z from cranial (slice 0, at the acetabular roof) to caudal
(the proximal femoral shaft). The anatomy is the atlas (pipelines.synth.atlas) varied per
subject (pipelines.synth.anatomy); an implanted side gets a total hip replacement
(pipelines.synth.implant). Reproducible from the random generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pipelines.synth.anatomy import Variation, build_anatomy, side_grid, subject_grid
from pipelines.synth.implant import Implant
from pipelines.synth.tissues import AIR, COCR, CORTICAL, MARROW, TITANIUM

IMPLANT_SIDES = (None, "left", "right", "both")
MAX_PIXEL_MM = 12.0  # coarser pixels lose the femur's cortex and the smaller muscles


@dataclass
class Phantom:
    """tissue: (K, S, S) uint8 tissue ids (tissues.TISSUES), with the implant if any.
    tissue_clean: the same anatomy with every metal voxel replaced by bone.
    labels: (K, S, S) uint8 muscle labels 0-4. side: "left", "right", "both" or None.
    texture: (K, S, S) float32 multiplier (about 1 +- 1%) of soft-tissue density and signal."""

    tissue: np.ndarray
    tissue_clean: np.ndarray
    labels: np.ndarray
    side: str | None
    texture: np.ndarray

    @property
    def metal_mask(self) -> np.ndarray:
        return (self.tissue == TITANIUM) | (self.tissue == COCR)


def check_geometry(size: int, fov_mm: float) -> None:
    """Refuse pixels too coarse for the anatomy, naming the smallest size that works."""
    if fov_mm / size > MAX_PIXEL_MM:
        smallest = int(np.ceil(fov_mm / MAX_PIXEL_MM / 4) * 4)
        raise ValueError(
            f"--size {size} gives {fov_mm / size:.1f} mm pixels over the {fov_mm:g} mm field of "
            f"view; the anatomy needs pixels of at most {MAX_PIXEL_MM:g} mm (--size >= {smallest})"
        )


def tissue_texture(
    shape: tuple[int, int, int], voxel_mm: tuple[float, float, float], seed: int
) -> np.ndarray:
    """Low-frequency heterogeneity: a smooth random field (correlation ~10 mm in-plane, ~20 mm
    along z) of standard deviation 1%, centred on 1."""
    rng = np.random.default_rng([seed, 4])
    sigma = (20.0 / voxel_mm[0], 10.0 / voxel_mm[1], 10.0 / voxel_mm[2])
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap"
    )
    field /= max(float(field.std()), 1e-12)
    return (1.0 + 0.01 * field).astype(np.float32)


def make_phantom(
    size: int,
    slices: int,
    rng: np.random.Generator,
    implant_side: str | None,
    fov_mm: float = 384.0,
    extent_mm: float = 120.0,
) -> Phantom:
    """Build one subject's phantom: (slices, size, size) tissue and label volumes over a square
    field of view of `fov_mm` and `extent_mm` from the acetabular roof down."""
    if implant_side not in IMPLANT_SIDES:
        raise ValueError(
            f"implant_side must be 'left', 'right', 'both' or None, got {implant_side!r}"
        )
    check_geometry(size, fov_mm)
    voxel = (extent_mm / slices, fov_mm / size, fov_mm / size)
    variation = Variation.draw(rng)
    grid = subject_grid(size, slices, fov_mm, extent_mm, variation)
    anatomy = build_anatomy(grid, variation, voxel)
    tissue = anatomy.tissue
    sides = {"right": (0,), "left": (1,), "both": (0, 1)}.get(implant_side or "", ())
    implant_rng = np.random.default_rng([variation.seed, 5])
    for side in sides:
        femur = anatomy.femurs[side]
        Implant.fit(femur, implant_rng).place(
            side_grid(grid, side, variation), tissue, femur["mask"]
        )
    metal = (tissue == TITANIUM) | (tissue == COCR)
    clean = tissue.copy()
    clean[metal] = MARROW
    labels = anatomy.labels
    labels[metal | (tissue == AIR) | (tissue == CORTICAL)] = 0
    return Phantom(
        tissue=tissue,
        tissue_clean=clean,
        labels=labels,
        side=implant_side,
        texture=tissue_texture(tissue.shape, voxel, variation.seed),
    )
