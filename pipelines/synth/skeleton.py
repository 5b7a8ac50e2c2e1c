"""Bones of the phantom: the pelvis (ilium, ischium, pubis, acetabulum), the coccyx and the
proximal femur (head, neck, greater and lesser trochanter, shaft), each a signed-distance
shape whose outer `cortex_mm` is cortical bone over cancellous bone (or fatty marrow in the
femoral canal)."""

from __future__ import annotations

import numpy as np

from pipelines.synth import atlas
from pipelines.synth.shapes import (
    Grid,
    Outline,
    capsule,
    ellipsoid,
    smooth_union,
    sphere,
    swept_ellipse,
)
from pipelines.synth.tissues import CORTICAL

JOINT_SPACE_MM = 2.5  # cartilage between the femoral head and the acetabulum
ACETABULUM_MM = 12.0  # thickness of the acetabular bone around the joint space
# direction out of the acetabulum's opening (lateral, anterior, inferior): ~45 deg inclination,
# ~18 deg anteversion
ACETABULUM_OPENING = np.array([0.67, -0.22, 0.71])


def femur_landmarks(head_radius: float, rng: np.random.Generator) -> dict[str, np.ndarray | float]:
    """One side's femur (x, y, z mm in that side's grid), the atlas's with a few mm of
    per-subject variation in neck direction and offset."""
    head = np.array(atlas.HEAD_CENTRE)
    direction = np.array(atlas.NECK_DIRECTION) + rng.uniform(-0.06, 0.06, 3)
    direction /= np.linalg.norm(direction)
    neck_base = head + atlas.NECK_LENGTH * direction
    shaft_top, shaft_end = (np.array(p) for p in atlas.SHAFT)
    offset = rng.uniform(-3.0, 3.0, 3) * np.array([1.0, 1.0, 0.0])
    return {
        "head": head,
        "head_radius": head_radius,
        "neck_direction": direction,
        "neck_base": neck_base,
        "shaft_top": shaft_top + offset,
        "shaft_end": shaft_end + offset,
    }


def femur_distance(grid: Grid, femur: dict[str, np.ndarray | float]) -> np.ndarray:
    """(K, S, S) signed distance (mm) to the proximal femur."""
    head, radius = femur["head"], float(femur["head_radius"])
    d = sphere(grid, head, radius)
    d = smooth_union(d, capsule(grid, head, femur["neck_base"], 0.68 * radius, 0.78 * radius), 4.0)
    d = smooth_union(d, ellipsoid(grid, *map(np.array, atlas.GREATER_TROCHANTER)), 8.0)
    d = smooth_union(
        d, capsule(grid, femur["neck_base"], femur["shaft_top"], 19.0, atlas.SHAFT_RADIUS), 8.0
    )
    d = smooth_union(d, ellipsoid(grid, *map(np.array, atlas.LESSER_TROCHANTER)), 5.0)
    return smooth_union(
        d,
        capsule(
            grid,
            femur["shaft_top"],
            femur["shaft_end"],
            atlas.SHAFT_RADIUS,
            atlas.SHAFT_RADIUS - 1.0,
        ),
        6.0,
    )


def femur_cortex_mm(grid: Grid) -> np.ndarray:
    """(K, 1, 1) cortical thickness along the femur: 2 mm proximally, 6 mm in the shaft."""
    return 2.0 + 4.0 * np.clip((grid.z - 70.0) / 30.0, 0.0, 1.0)


def acetabulum_distance(grid: Grid, femur: dict[str, np.ndarray | float]) -> np.ndarray:
    """(K, S, S) signed distance to the acetabulum: a spherical shell around the femoral head
    and its joint space, open towards ACETABULUM_OPENING."""
    head, radius = femur["head"], float(femur["head_radius"])
    inner = radius + JOINT_SPACE_MM
    dx, dy, dz = grid.x - head[0], grid.y - head[1], grid.z - head[2]
    r = np.sqrt(dx**2 + dy**2 + dz**2)
    shell = np.maximum(inner - r, r - (inner + ACETABULUM_MM))
    opening = dx * ACETABULUM_OPENING[0] + dy * ACETABULUM_OPENING[1] + dz * ACETABULUM_OPENING[2]
    cover = opening - 0.05 * r  # > 0 inside the opening's cone
    return np.maximum(shell, cover).astype(np.float32)


def pelvis_distance(
    grid: Grid, femur: dict[str, np.ndarray | float], rng: np.random.Generator
) -> np.ndarray:
    """(K, S, S) signed distance to one side's pelvic bone."""
    d = acetabulum_distance(grid, femur)
    for keyframes in atlas.PELVIS.values():
        d = smooth_union(d, swept_ellipse(grid, keyframes, Outline.random(rng, 0.04)), 4.0)
    return d


def paint_bone(
    tissue: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray,
    cortex_mm: np.ndarray | float,
    interior: np.ndarray | int,
) -> None:
    """In place: voxels with distance < 0 become cortical bone within `cortex_mm` of the
    surface and `interior` (a tissue id or a per-voxel array of ids) deeper; labels there go
    to 0."""
    inside = distance < 0
    cortex = inside & (distance > -cortex_mm)
    deep = inside & ~cortex
    tissue[deep] = interior[deep] if isinstance(interior, np.ndarray) else interior
    tissue[cortex] = CORTICAL
    labels[inside] = 0
