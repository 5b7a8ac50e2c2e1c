"""Pelvis-like 3D label phantoms at the level of the hip joints, with optional hip prosthesis.

Coordinates: arrays are (z, y, x) = (slice, row, column). x runs from the subject's right (-1)
to left (+1), y from anterior (-1) to posterior (+1), z from cranial (slice 0, acetabular roof)
to caudal (proximal femoral shaft). Shapes are ellipses in normalised in-plane coordinates
[-1, 1]^2, warped by a smooth random deformation and scaled per subject, so anatomy varies
between subjects but is reproducible from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.synth.tissues import (
    AIR,
    BLADDER,
    COCR,
    CORTICAL,
    FAT,
    LABELS,
    MARROW,
    MUSCLE,
    TITANIUM,
)


@dataclass
class Phantom:
    """tissue: (K, S, S) uint8 tissue ids (tissues.TISSUES), with the implant if any.
    tissue_clean: the same anatomy with every metal voxel replaced by bone.
    labels: (K, S, S) uint8 muscle labels 0-4. side: "left", "right" or None."""

    tissue: np.ndarray
    tissue_clean: np.ndarray
    labels: np.ndarray
    side: str | None

    @property
    def metal_mask(self) -> np.ndarray:
        return (self.tissue == TITANIUM) | (self.tissue == COCR)


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0
) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    u = (x - cx) * c + (y - cy) * s
    v = -(x - cx) * s + (y - cy) * c
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def _smooth_warp(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, amplitude: float
) -> tuple[np.ndarray, np.ndarray]:
    """Add a smooth random displacement (a few low-frequency sinusoids) to the coordinates."""
    dx = np.zeros_like(x)
    dy = np.zeros_like(y)
    for _ in range(3):
        fx, fy = rng.uniform(0.5, 2.0, size=2)
        px, py = rng.uniform(0, 2 * np.pi, size=2)
        dx += amplitude * rng.uniform(-1, 1) * np.sin(np.pi * fx * y + px)
        dy += amplitude * rng.uniform(-1, 1) * np.sin(np.pi * fy * x + py)
    return x + dx, y + dy


def make_phantom(
    size: int, slices: int, rng: np.random.Generator, implant_side: str | None
) -> Phantom:
    """Build one subject's phantom: (slices, size, size) tissue and label volumes."""
    if implant_side not in (None, "left", "right"):
        raise ValueError(f"implant_side must be 'left', 'right' or None, got {implant_side!r}")
    coords = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    y0, x0 = np.meshgrid(coords, coords, indexing="ij")
    x, y = _smooth_warp(x0, y0, rng, amplitude=0.025)
    scale = rng.uniform(0.9, 1.05)
    x, y = x / scale, y / scale
    body_rx, body_ry = rng.uniform(0.84, 0.92), rng.uniform(0.55, 0.62)
    fat = rng.uniform(0.05, 0.12)
    jitter = rng.uniform(-0.02, 0.02, size=(2, 4, 2))  # side, muscle, (cx, cy)
    head_x = rng.uniform(0.40, 0.45)

    tissue = np.zeros((slices, size, size), dtype=np.uint8)
    labels = np.zeros((slices, size, size), dtype=np.uint8)
    metal = np.zeros((slices, size, size), dtype=np.uint8)
    for k in range(slices):
        z = (k + 0.5) / slices  # 0 cranial .. 1 caudal
        t = np.full((size, size), AIR, dtype=np.uint8)
        lab = np.zeros((size, size), dtype=np.uint8)
        body = _ellipse(x, y, 0.0, 0.02, body_rx, body_ry)
        t[body] = FAT
        inner = _ellipse(x, y, 0.0, 0.02, body_rx - fat, body_ry - fat * 0.8)
        t[inner] = MUSCLE
        for side_index, sign in enumerate((-1.0, 1.0)):  # -1: right side of the subject
            j = jitter[side_index]
            muscles = [
                (
                    "GMAX",
                    _ellipse(
                        x, y, sign * (0.42 + j[0, 0]), 0.36 + j[0, 1], 0.30, 0.15, sign * 0.35
                    ),
                ),
                (
                    "TFL",
                    _ellipse(
                        x, y, sign * (0.63 + j[3, 0]), -0.30 + j[3, 1], 0.06, 0.09, sign * -0.4
                    ),
                ),
            ]
            if z < 0.7:
                grow = 1.0 - z / 0.7
                muscles.append(
                    (
                        "GMED",
                        _ellipse(
                            x,
                            y,
                            sign * (0.66 + j[1, 0]),
                            0.06 + j[1, 1],
                            0.08 + 0.06 * grow,
                            0.16,
                            sign * 0.2,
                        ),
                    )
                )
            if z < 0.5:
                muscles.append(
                    (
                        "GMIN",
                        _ellipse(
                            x, y, sign * (0.56 + j[2, 0]), -0.05 + j[2, 1], 0.05, 0.09, sign * 0.2
                        ),
                    )
                )
            for name, region in muscles:
                region &= inner
                t[region] = MUSCLE
                lab[region] = LABELS[name]
            # femur: head (cranial) to shaft (caudal), cortical shell with marrow inside
            fx = sign * (head_x + 0.10 * z)
            radius = 0.085 - 0.03 * min(z / 0.5, 1.0)
            femur = _ellipse(x, y, fx, 0.02, radius, radius)
            marrow = _ellipse(x, y, fx, 0.02, radius - 0.022, radius - 0.022)
            t[femur], lab[femur] = CORTICAL, 0
            t[marrow] = MARROW
            # acetabulum and ischium (cranial slices): bone medial to the femoral head
            if z < 0.45:
                ring = _ellipse(
                    x, y, sign * head_x, 0.02, radius + 0.05, radius + 0.05
                ) & ~_ellipse(x, y, sign * head_x, 0.02, radius + 0.012, radius + 0.012)
                ring &= (sign * (x - sign * head_x)) < 0.02
                t[ring], lab[ring] = CORTICAL, 0
                ischium = _ellipse(x, y, sign * 0.24, 0.26, 0.07, 0.05)
                t[ischium], lab[ischium] = MARROW, 0
                shell = ischium & ~_ellipse(x, y, sign * 0.24, 0.26, 0.05, 0.035)
                t[shell] = CORTICAL
            # prosthesis: CoCr head and cup cranially, titanium neck and stem caudally
            if implant_side is not None and (sign > 0) == (implant_side == "left"):
                m = metal[k]
                if z < 0.35:
                    m[_ellipse(x, y, sign * head_x, 0.02, 0.06, 0.06)] = COCR
                    cup = _ellipse(x, y, sign * head_x, 0.02, 0.078, 0.078) & ~_ellipse(
                        x, y, sign * head_x, 0.02, 0.066, 0.066
                    )
                    m[cup & ((sign * (x - sign * head_x)) < 0.03)] = COCR
                if 0.25 <= z < 0.5:
                    neck_x = sign * (head_x + 0.10 * z)
                    m[_ellipse(x, y, neck_x, 0.02, 0.035, 0.028)] = TITANIUM
                if z >= 0.45:
                    m[_ellipse(x, y, fx, 0.02, 0.028, 0.024)] = TITANIUM
        if z < 0.5:  # bladder, anterior midline, cranial slices
            bladder = _ellipse(x, y, 0.0, -0.22, 0.13 * (1 - z), 0.10 * (1 - z) + 0.01)
            t[bladder & inner] = BLADDER
            lab[bladder] = 0
        tissue[k], labels[k] = t, lab
    clean = tissue.copy()
    implanted = tissue.copy()
    has_metal = metal > 0
    implanted[has_metal] = metal[has_metal]
    clean[has_metal & (clean != CORTICAL)] = MARROW
    labels[has_metal] = 0
    return Phantom(tissue=implanted, tissue_clean=clean, labels=labels, side=implant_side)
