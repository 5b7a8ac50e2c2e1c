"""How much the phantom's labelled muscles vary between subjects (issue 14, the Dice target):
volume and position of GMAX, GMED, GMIN and TFL over SUBJECTS metal-free phantoms.

    python bench/anatomy_spread.py [--subjects 12] [--size 128] [--slices 16]

Per muscle and side: the in-slab volume (cm^3) and the centroid (mm) relative to the body's
centroid on the same slices (pose shift removed). Prints, per muscle, the mean volume, its
coefficient of variation (CV) between subjects, and the standard deviation of the centroid in
x (left-right), y (antero-posterior) and z. The slab covers the acetabular roof to the
proximal shaft, so volumes are partial; the CV is what compares with the literature's
between-subject spread of whole-muscle volumes (docs/synthesis.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.synth.phantom import make_phantom
from pipelines.synth.tissues import AIR, LABELS

FOV_MM, EXTENT_MM = 384.0, 120.0


def muscle_measures(
    labels: np.ndarray, body: np.ndarray, voxel_mm: tuple[float, float, float]
) -> dict[tuple[str, int], tuple[float, np.ndarray]]:
    """(muscle, side) -> (volume cm^3, centroid - body centroid (x, y, z) mm) for one subject's
    (K, S, S) `labels` and bool `body`; side 0 is the image's left half (the subject's right)."""
    z, y, x = np.nonzero(body)
    spacing = np.array([voxel_mm[2], voxel_mm[1], voxel_mm[0]])
    centre = np.array([x.mean(), y.mean(), z.mean()]) * spacing
    half = labels.shape[2] // 2
    result = {}
    for name, value in LABELS.items():
        for side, columns in enumerate((slice(0, half), slice(half, None))):
            mask = np.zeros_like(body)
            mask[:, :, columns] = labels[:, :, columns] == value
            z, y, x = np.nonzero(mask)
            volume = len(x) * float(np.prod(voxel_mm)) / 1000.0
            centroid = np.array([x.mean(), y.mean(), z.mean()]) * spacing - centre
            result[(name, side)] = (volume, centroid)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--slices", type=int, default=16)
    args = parser.parse_args()
    voxel = (EXTENT_MM / args.slices, FOV_MM / args.size, FOV_MM / args.size)
    measures = []
    for index in range(args.subjects):
        rng = np.random.default_rng([7, index])
        phantom = make_phantom(args.size, args.slices, rng, None, FOV_MM, EXTENT_MM)
        measures.append(muscle_measures(phantom.labels, phantom.tissue != AIR, voxel))
    print("| muscle | mean volume in slab (cm3) | volume CV | centroid SD x / y / z (mm) |")
    print("|---|---|---|---|")
    for name in LABELS:
        keys = [(name, side) for side in (0, 1)]
        volumes = np.array([m[k][0] for m in measures for k in keys])
        # the right side mirrored onto the left, so that x spreads are comparable
        centroids = np.array([m[k][1] * ((-1) ** (k[1] + 1), 1, 1) for m in measures for k in keys])
        sd = centroids.std(axis=0, ddof=1)
        print(
            f"| {name} | {volumes.mean():.1f} | {volumes.std(ddof=1) / volumes.mean():.1%} "
            f"| {sd[0]:.1f} / {sd[1]:.1f} / {sd[2]:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
