"""One subject's native hip anatomy: the atlas (pipelines.synth.atlas) scaled, posed, perturbed
and painted into tissue and label volumes.

Painting order: subcutaneous fat inside the skin; muscle compartments (their overlaps resolved by
order), separated by fat planes; intramuscular fat (marbling); organs and vessels; bones with a
cortical shell over cancellous bone or fatty marrow. Every structure is a signed-distance shape
(pipelines.synth.shapes) on the subject's grid, so shapes vary smoothly along z and between
subjects, and labels always agree with the tissue they lie on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pipelines.synth import atlas, skeleton
from pipelines.synth.shapes import (
    Grid,
    Keyframe,
    Outline,
    sphere,
    swept_ellipse,
)
from pipelines.synth.tissues import (
    AIR,
    BLADDER,
    BLOOD,
    BOWEL,
    CORTICAL,
    FAT,
    LABELS,
    MARROW,
    MUSCLE,
    SOFT,
    YELLOW_MARROW,
)

SIDES = ("right", "left")  # side index 0 is the subject's right (x < 0)
PLANE_MAX_PIXEL_MM = 3.0
MUSCLE_FILL = (
    1.3  # the atlas gives muscle cores; compartments grow until they pack, fat planes part them
)


@dataclass(frozen=True)
class Variation:
    """Per-subject variation. scale: in-plane size; aspect: AP/width; z_scale, z_offset_mm: the
    cranio-caudal stretch and shift; rotation_deg, shift_mm: pose in the scanner; muscle_bulk:
    muscle size; fat_mm: subcutaneous fat thickness; plane_mm: fat planes between muscles;
    marbling: intramuscular fat fraction; bladder_fill; rectal_gas; head_radius_mm: femoral head;
    side_dz_mm: pelvic obliquity (z shift of each side); seed: outlines and textures."""

    scale: float
    aspect: float
    z_scale: float
    z_offset_mm: float
    rotation_deg: float
    shift_mm: tuple[float, float]
    muscle_bulk: float
    fat_mm: float
    plane_mm: float
    marbling: float
    bladder_fill: float
    rectal_gas: bool
    head_radius_mm: float
    side_dz_mm: tuple[float, float]
    seed: int = field(default=0)

    @staticmethod
    def draw(rng: np.random.Generator) -> Variation:
        """A random adult within the ranges documented in docs/synthesis.md."""
        return Variation(
            scale=float(rng.uniform(0.86, 1.0)),
            aspect=float(rng.uniform(0.94, 1.06)),
            z_scale=float(rng.uniform(0.93, 1.05)),
            z_offset_mm=float(rng.uniform(-4.0, 4.0)),
            rotation_deg=float(rng.uniform(-4.0, 4.0)),
            shift_mm=(float(rng.uniform(-6, 6)), float(rng.uniform(-6, 6))),
            muscle_bulk=float(rng.uniform(0.92, 1.08)),
            fat_mm=float(rng.uniform(8.0, 26.0)),
            plane_mm=float(rng.uniform(1.5, 3.0)),
            marbling=float(rng.uniform(0.005, 0.025)),
            bladder_fill=float(rng.uniform(0.55, 1.1)),
            rectal_gas=bool(rng.random() < 0.5),
            head_radius_mm=float(rng.uniform(21.5, 25.0)),
            side_dz_mm=(float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-2.5, 2.5))),
            seed=int(rng.integers(2**31)),
        )


def subject_grid(size: int, slices: int, fov_mm: float, extent_mm: float, v: Variation) -> Grid:
    """The canonical coordinates of every voxel of a (slices, size, size) volume: pose, size
    and a smooth warp of a few mm undone."""
    pixel = fov_mm / size
    centres = (np.arange(size) + 0.5) * pixel - fov_mm / 2
    yy, xx = np.meshgrid(centres, centres, indexing="ij")
    xx, yy = xx - v.shift_mm[0], yy - v.shift_mm[1]
    angle = np.deg2rad(-v.rotation_deg)
    x = (xx * np.cos(angle) - yy * np.sin(angle)) / v.scale
    y = (xx * np.sin(angle) + yy * np.cos(angle)) / (v.scale * v.aspect)
    rng = np.random.default_rng([v.seed, 1])
    for _ in range(3):  # smooth warp, about 3 mm
        fx, fy = rng.uniform(0.004, 0.012, 2)
        px, py = rng.uniform(0, 2 * np.pi, 2)
        x = x + 3.0 * rng.uniform(-1, 1) * np.sin(fx * 2 * np.pi * y + px)
        y = y + 3.0 * rng.uniform(-1, 1) * np.sin(fy * 2 * np.pi * x + py)
    z = ((np.arange(slices) + 0.5) * extent_mm / slices - v.z_offset_mm) / v.z_scale
    return Grid(
        z=z.astype(np.float32)[:, None, None],
        y=y.astype(np.float32)[None],
        x=x.astype(np.float32)[None],
    )


def side_grid(grid: Grid, side: int, v: Variation) -> Grid:
    """The grid in which the atlas's left-side keyframes draw side `side` (0 right, 1 left):
    the right side is the mirror image, each side shifted by its obliquity."""
    x = grid.x if side == 1 else -grid.x
    return Grid(z=grid.z - v.side_dz_mm[side], y=grid.y, x=x)


def scaled(keyframes: list[Keyframe], factor: float) -> list[Keyframe]:
    """Keyframes with both semi-axes multiplied by `factor` (muscle bulk, bladder filling)."""
    return [(z, cx, cy, a * factor, b * factor, angle) for z, cx, cy, a, b, angle in keyframes]


@dataclass
class Anatomy:
    """tissue: (K, S, S) uint8 tissue ids; labels: (K, S, S) uint8 muscle labels (0-4);
    compartments: (K, S, S) int16 muscle compartment ids (0: none), for checks; femurs: per
    side, the femur landmarks in that side's grid (for the implant)."""

    tissue: np.ndarray
    labels: np.ndarray
    compartments: np.ndarray
    femurs: list[dict[str, np.ndarray | float]]


def paint_body(grid: Grid, v: Variation, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(tissue with AIR outside the skin and FAT inside, deep-fascia signed distance in mm)."""
    bulk = 1.0 + 0.35 * (v.muscle_bulk - 1.0)
    deep = swept_ellipse(
        grid, scaled(atlas.DEEP_OUTLINE, bulk), Outline.random(rng, 0.025), atlas.DEEP_POWER
    )
    theta = np.arctan2(grid.y, grid.x)
    posterior = np.clip(np.sin(theta), 0.0, 1.0)
    ripple = Outline.random(rng, 0.15, orders=4).factor(theta)
    thickness = v.fat_mm * (0.7 + 0.7 * posterior) * ripple
    tissue = np.where(deep < thickness, FAT, AIR).astype(np.uint8)
    return tissue, deep


def paint_compartments(
    grid: Grid, v: Variation, rng: np.random.Generator, deep: np.ndarray
) -> np.ndarray:
    """(K, S, S) int16 compartment ids: 2 * muscle index + side + 1 (0: none), inside the deep
    fascia; the midline levator ani is one compartment."""
    compartments = np.zeros(grid.shape, dtype=np.int16)
    inside = deep < 0
    for index, (name, keyframes) in enumerate(atlas.MUSCLES.items()):
        for side in (0, 1):
            if name == "levator ani" and side == 0:
                continue
            g = grid if name == "levator ani" else side_grid(grid, side, v)
            d = swept_ellipse(
                g, scaled(keyframes, MUSCLE_FILL * v.muscle_bulk), Outline.random(rng, 0.035)
            )
            compartments[(d < 0) & inside] = 2 * index + side + 1
    return compartments


def carve_fat_planes(compartments: np.ndarray, plane_mm: float, pixel_mm: float) -> np.ndarray:
    """Compartments with a fat plane of about `plane_mm` (at least one pixel per side) cut where
    two compartments touch: a voxel is dropped (set to 0) when a voxel of another compartment
    lies within half the plane width of it, in-plane. Pixels coarser than PLANE_MAX_PIXEL_MM
    get no planes (they would be partial-volumed away by the scanner)."""
    if pixel_mm > PLANE_MAX_PIXEL_MM:  # a plane of a few mm vanishes in such pixels
        return compartments
    reach = max(1, round(plane_mm / (2 * pixel_mm)))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    footprint = (xx**2 + yy**2 <= reach**2 + 0.5)[None]
    big = np.iinfo(np.int16).max
    low = ndimage.minimum_filter(np.where(compartments > 0, compartments, big), footprint=footprint)
    high = ndimage.maximum_filter(np.where(compartments > 0, compartments, -1), footprint=footprint)
    touching = (compartments > 0) & ((low < compartments) | (high > compartments))
    return np.where(touching, 0, compartments).astype(np.int16)


def label_volume(compartments: np.ndarray) -> np.ndarray:
    """(K, S, S) uint8 labels of the four muscles of the paper from the compartment ids."""
    labels = np.zeros(compartments.shape, dtype=np.uint8)
    names = list(atlas.MUSCLES)
    for name, label in LABELS.items():
        index = names.index(name)
        labels[(compartments == 2 * index + 1) | (compartments == 2 * index + 2)] = label
    return labels


def marbling(
    shape: tuple[int, int, int], fraction: float, voxel_mm: tuple[float, float, float], seed: int
) -> np.ndarray:
    """(K, S, S) bool intramuscular fat: streaks of a smooth random field, elongated along z
    (muscle fibres run cranio-caudally), covering about `fraction` of the volume."""
    rng = np.random.default_rng([seed, 2])
    sigma = (max(4.0 / voxel_mm[0], 0.5), 1.0 / voxel_mm[1] + 0.3, 1.0 / voxel_mm[2] + 0.3)
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field > np.quantile(field, 1.0 - fraction)


def paint_organs(
    tissue: np.ndarray, labels: np.ndarray, grid: Grid, v: Variation, rng: np.random.Generator
) -> None:
    """In place: bladder (3 mm wall around urine), rectum (wall, content, maybe gas), prostate
    and the femoral arteries and veins of both sides."""
    wall = 3.0
    bladder = swept_ellipse(grid, scaled(atlas.BLADDER, v.bladder_fill), Outline.random(rng, 0.04))
    rectum = swept_ellipse(grid, atlas.RECTUM, Outline.random(rng, 0.06))
    prostate = swept_ellipse(grid, atlas.PROSTATE, Outline.random(rng, 0.05))
    for distance, content in ((prostate, SOFT), (bladder, BLADDER), (rectum, BOWEL)):
        organ = distance < 0
        tissue[organ & (distance > -wall)] = SOFT
        tissue[organ & (distance <= -wall)] = content
        labels[organ] = 0
    if v.rectal_gas:
        gas = swept_ellipse(
            grid, [(z, cx, cy - 3.0, a * 0.45, b * 0.4, t) for z, cx, cy, a, b, t in atlas.RECTUM]
        )
        tissue[(gas < 0) & (rectum < -wall)] = AIR
    for side in (0, 1):
        g = side_grid(grid, side, v)
        artery = [(z, cx, cy, r, r, 0.0) for z, cx, cy, r in atlas.FEMORAL_ARTERY]
        vein_a, vein_b = atlas.VEIN_RADIUS_MM, 0.8 * atlas.VEIN_RADIUS_MM
        vein = [
            (z, cx - atlas.VEIN_OFFSET_MM, cy, vein_a, vein_b, 0.0)
            for z, cx, cy, _ in atlas.FEMORAL_ARTERY
        ]
        for keyframes in (artery, vein):
            vessel = swept_ellipse(g, keyframes) < 0
            tissue[vessel], labels[vessel] = BLOOD, 0


def paint_bones(
    tissue: np.ndarray,
    labels: np.ndarray,
    grid: Grid,
    v: Variation,
    rng: np.random.Generator,
    pixel_mm: float,
) -> list[dict]:
    """In place: both pelves, the coccyx and both femurs (joint space as soft tissue).
    Returns each side's femur landmarks (in that side's grid)."""
    femurs = []
    thin = max(1.5, 0.8 * pixel_mm)  # pelvic cortex, at least most of a pixel
    coccyx = swept_ellipse(grid, atlas.COCCYX)
    skeleton.paint_bone(tissue, labels, coccyx, thin, MARROW)
    for side in (0, 1):
        g = side_grid(grid, side, v)
        femur = skeleton.femur_landmarks(v.head_radius_mm, rng)
        femurs.append(femur)
        skeleton.paint_bone(tissue, labels, skeleton.pelvis_distance(g, femur, rng), thin, MARROW)
        joint = sphere(g, femur["head"], float(femur["head_radius"]) + skeleton.JOINT_SPACE_MM) < 0
        tissue[joint], labels[joint] = SOFT, 0
        cortex = np.maximum(skeleton.femur_cortex_mm(g), 0.8 * pixel_mm)
        # cancellous bone proximally, fatty marrow in the canal below the lesser trochanter
        interior = np.where(g.z < 85.0, MARROW, YELLOW_MARROW).astype(np.uint8)
        distance = skeleton.femur_distance(g, femur)
        skeleton.paint_bone(
            tissue, labels, distance, cortex, np.broadcast_to(interior, tissue.shape)
        )
        femur["mask"] = distance < 0
    return femurs


def periosteal_fat(tissue: np.ndarray, labels: np.ndarray) -> None:
    """In place: muscle voxels touching bone (in-plane) become a one-pixel fat layer, so that
    a muscle's edge shows against the bone it attaches to (like the planes, only in pixels of
    at most PLANE_MAX_PIXEL_MM)."""
    bone = np.isin(tissue, (CORTICAL, MARROW, YELLOW_MARROW))
    near = ndimage.binary_dilation(bone, ndimage.generate_binary_structure(2, 1)[None])
    edge = near & ~bone & (tissue == MUSCLE)
    tissue[edge], labels[edge] = FAT, 0


def build_anatomy(grid: Grid, v: Variation, voxel_mm: tuple[float, float, float]) -> Anatomy:
    """Paint one subject's native anatomy on its grid (voxel_mm: (z, y, x) spacing)."""
    rng = np.random.default_rng([v.seed, 3])
    tissue, deep = paint_body(grid, v, rng)
    compartments = paint_compartments(grid, v, rng, deep)
    compartments = carve_fat_planes(compartments, v.plane_mm, voxel_mm[1])
    muscle = compartments > 0
    tissue[muscle] = MUSCLE
    tissue[muscle & marbling(tissue.shape, v.marbling, voxel_mm, v.seed)] = FAT
    labels = label_volume(compartments)
    paint_organs(tissue, labels, grid, v, rng)
    femurs = paint_bones(tissue, labels, grid, v, rng, voxel_mm[1])
    if voxel_mm[1] <= PLANE_MAX_PIXEL_MM:
        periosteal_fat(tissue, labels)
    compartments[tissue != MUSCLE] = 0
    return Anatomy(tissue=tissue, labels=labels, compartments=compartments, femurs=femurs)
