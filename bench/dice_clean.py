"""Dice of label propagation between clean MRIs of different subjects (issue 14's acceptance):
each ordered pair of SUBJECTS clean 256 px phantoms registered with `madn evaluate`'s
registration and variants of it, labels warped, 3D Dice per muscle.

    python bench/dice_clean.py [--subjects 3] [--size 256] [--slices 16] [--pairs ring|all]
        [--arms default,refine,mesh20]

Arms: default = `default_registration()` (rigid + B-spline FFD, 40 mm control points, 3 mm
estimation grid); refine = the same with the control grid halved at the fine level (40 -> 20
mm, `RegistrationConfig.mesh_refine`); mesh20 = 20 mm control points at every level. Prints a
table of mean Dice per muscle and seconds per registration.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.data.registration import RegistrationConfig
from pipelines.evaluation.propagation import (
    MUSCLES,
    MRIVolume,
    default_registration,
    propagate_pair,
)
from pipelines.synth.generate import SynthConfig, simulate_subject

ARMS = {
    "default": {},
    "refine": {"mesh_refine": True},
    "mesh20": {"mesh_mm": 20.0},
}


def clean_volumes(subjects: int, size: int, slices: int) -> list[MRIVolume]:
    """The clean MRI and labels of `subjects` metal-free phantoms (seed 7)."""
    config = SynthConfig(subjects=subjects, size=size, slices=slices, seed=7)
    z, y, x = config.voxel_mm
    volumes = []
    for index in range(subjects):
        subject = simulate_subject(config, index, has_metal=False)
        volumes.append(
            MRIVolume(
                subject=subject.subject_id,
                image=subject.volumes["mri_clean"],
                labels=subject.volumes["labels"],
                spacing_xyz=(x, y, z),
            )
        )
    return volumes


def pairs(count: int, which: str) -> list[tuple[int, int]]:
    """ring: 0->1, 1->2, ..., (n-1)->0; all: every ordered pair."""
    if which == "ring":
        return [(i, (i + 1) % count) for i in range(count)]
    return [(i, j) for i in range(count) for j in range(count) if i != j]


def run_arm(volumes: list[MRIVolume], config: RegistrationConfig, todo: list) -> tuple:
    """(mean Dice per muscle, seconds per registration) over the pairs `todo`."""
    start = time.monotonic()
    dice = [propagate_pair("mri", volumes[i], volumes[j], config).dice for i, j in todo]
    means = {m: float(np.nanmean([d[m] for d in dice])) for m in MUSCLES.values()}
    return means, (time.monotonic() - start) / len(todo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--pairs", choices=("ring", "all"), default="ring")
    parser.add_argument("--arms", default=",".join(ARMS))
    args = parser.parse_args()
    volumes = clean_volumes(args.subjects, args.size, args.slices)
    todo = pairs(args.subjects, args.pairs)
    print(f"{len(todo)} pairs of clean {args.size} px, {args.slices}-slice subjects (seed 7)")
    print("| arm | " + " | ".join(MUSCLES.values()) + " | s per registration |")
    print("|---|" + "---|" * (len(MUSCLES) + 1))
    for name in args.arms.split(","):
        config = dataclasses.replace(default_registration(), **ARMS[name])
        means, seconds = run_arm(volumes, config, todo)
        row = " | ".join(f"{means[m]:.3f}" for m in MUSCLES.values())
        print(f"| {name} | {row} | {seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
