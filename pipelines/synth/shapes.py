"""Signed-distance shapes on a 3D grid in millimetres, the building blocks of the phantom.

A `Grid` holds the (z, y, x) coordinates of every voxel centre in mm, broadcastable to the
volume's (K, S, S) shape: x from the subject's right (-) to left (+), y from anterior (-) to
posterior (+), z from cranial (0, the acetabular roof) to caudal. Every shape returns an
approximate signed distance in mm (negative inside), so that shells (cortical bone, bladder
wall) and unions come from thresholds and minima.

- `swept_ellipse`: an ellipse whose centre, semi-axes and angle are interpolated linearly between
  keyframes along z, with a small Fourier perturbation of its outline: muscles, organs, pelvic
  bones and the body outline. It exists between its first and last keyframe only.
- `sphere`, `capsule` (a segment with linearly varying radius) and `ellipsoid`: the femur,
  the acetabulum and the implant, whose shapes are truly 3D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Keyframe = tuple[float, float, float, float, float, float]  # z, cx, cy, a, b, angle (degrees)
FAR = 1e4  # distance (mm) returned where a shape does not exist


@dataclass(frozen=True)
class Grid:
    """z: (K, 1, 1), y and x: (1, S, S) voxel-centre coordinates in mm (float32), in the
    subject's canonical frame (pose, size and warp already undone)."""

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z.shape[0], self.x.shape[1], self.x.shape[2])


@dataclass(frozen=True)
class Outline:
    """Fourier perturbation of an outline: radius x (1 + sum_k amp_k cos(k phi + phase_k))."""

    amplitudes: tuple[float, ...] = ()
    phases: tuple[float, ...] = ()

    @staticmethod
    def random(rng: np.random.Generator, amplitude: float, orders: int = 3) -> Outline:
        amps = tuple(float(a) for a in rng.uniform(-amplitude, amplitude, orders))
        return Outline(amps, tuple(float(p) for p in rng.uniform(0, 2 * np.pi, orders)))

    def factor(self, phi: np.ndarray) -> np.ndarray | float:
        if not self.amplitudes:
            return 1.0
        total = np.ones_like(phi)
        for order, (amp, phase) in enumerate(zip(self.amplitudes, self.phases, strict=True), 2):
            total += amp * np.cos(order * phi + phase)
        return total


def _interpolate(keyframes: list[Keyframe], z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each keyframe column at every slice z (K,) -> tuple of (K, 1, 1) arrays."""
    table = np.asarray(keyframes, dtype=np.float64)
    return tuple(np.interp(z, table[:, 0], table[:, c])[:, None, None] for c in range(1, 6))


def swept_ellipse(
    grid: Grid,
    keyframes: list[Keyframe],
    outline: Outline | None = None,
    power: float = 2.0,
) -> np.ndarray:
    """(K, S, S) signed distance (mm) to an ellipse (a super-ellipse for power != 2) swept along
    z through `keyframes` (sorted by z); FAR on slices outside the keyframes' z range."""
    z = grid.z.reshape(-1)
    zs = [k[0] for k in keyframes]
    present = (z >= min(zs)) & (z <= max(zs))
    out = np.full(grid.shape, FAR, dtype=np.float32)
    if not present.any():
        return out
    cx, cy, a, b, angle = _interpolate(keyframes, z[present])
    theta = np.deg2rad(angle)
    dx, dy = grid.x - cx, grid.y - cy
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    r = np.hypot(u, v)
    phi = np.arctan2(v * a, u * b)
    # radius of the outline in the direction of (u, v)
    direction = np.arctan2(v, u)
    cos, sin = np.abs(np.cos(direction)), np.abs(np.sin(direction))
    boundary = 1.0 / ((cos / a) ** power + (sin / b) ** power) ** (1.0 / power)
    boundary = boundary * (outline.factor(phi) if outline else 1.0)
    distance = (r - boundary) * _normal_factor(u, v, a, b, r)
    out[present] = distance.astype(np.float32)
    return out


def _normal_factor(
    u: np.ndarray, v: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray
) -> np.ndarray:
    """Ratio of the normal to the radial distance at an ellipse's boundary (<= 1): corrects
    the radial distance of elongated shapes so that shells have their nominal thickness."""
    rho_u, rho_v = u / a**2, v / b**2
    gradient = np.hypot(rho_u, rho_v)
    rho = np.hypot(u / a, v / b)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(r > 1e-6, rho / np.maximum(gradient * r, 1e-9), 1.0)
    return np.clip(factor, 0.2, 1.0)


def sphere(grid: Grid, centre: np.ndarray, radius: float) -> np.ndarray:
    """(K, S, S) signed distance to a sphere; centre (x, y, z) mm."""
    return (
        np.sqrt((grid.x - centre[0]) ** 2 + (grid.y - centre[1]) ** 2 + (grid.z - centre[2]) ** 2)
        - radius
    ).astype(np.float32)


def ellipsoid(grid: Grid, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(K, S, S) approximate signed distance to an axis-aligned ellipsoid (x, y, z radii)."""
    scaled = np.sqrt(
        ((grid.x - centre[0]) / radii[0]) ** 2
        + ((grid.y - centre[1]) / radii[1]) ** 2
        + ((grid.z - centre[2]) / radii[2]) ** 2
    )
    return ((scaled - 1.0) * float(np.min(radii))).astype(np.float32)


def capsule(
    grid: Grid, start: np.ndarray, end: np.ndarray, radius_start: float, radius_end: float
) -> np.ndarray:
    """(K, S, S) signed distance to a segment start-end (x, y, z mm) whose radius varies
    linearly from radius_start to radius_end (rounded ends)."""
    axis = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    length2 = float(axis @ axis)
    px, py, pz = grid.x - start[0], grid.y - start[1], grid.z - start[2]
    t = np.clip((px * axis[0] + py * axis[1] + pz * axis[2]) / length2, 0.0, 1.0)
    dist = np.sqrt((px - t * axis[0]) ** 2 + (py - t * axis[1]) ** 2 + (pz - t * axis[2]) ** 2)
    return (dist - (radius_start + t * (radius_end - radius_start))).astype(np.float32)


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two distances (a fillet of about k mm where they meet)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return (b * (1 - h) + a * h - k * h * (1 - h)).astype(np.float32)
