"""Measured acceptance of the phantom (docs/synthesis.md): CT and MRI contrast of the muscles,
CT-MRI similarity, artefact strength, Dice of label propagation between clean MRIs, and the
synthesis speed.

    .venv/bin/python bench/phantom.py [--size 256] [--slices 16]

Prints one JSON object; the docs quote it with the date and machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from madn_core.similarity import lncc_map
from pipelines.evaluation.propagation import MRIVolume, default_registration, propagate_pair
from pipelines.synth.generate import SynthConfig, simulate_subject
from pipelines.synth.tissues import FAT, MUSCLE

MUSCLE_NAMES = {1: "GMAX", 2: "GMED", 3: "GMIN", 4: "TFL"}


def ct_contrast(ct: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Per labelled muscle: mean HU inside, and of the 2-pixel in-plane ring outside it with
    bone (> 300 HU) left out."""
    result = {}
    ring_structure = ndimage.generate_binary_structure(2, 1)[None]
    for label, name in MUSCLE_NAMES.items():
        inside = labels == label
        if not inside.any():
            continue
        grown = ndimage.binary_dilation(inside, ring_structure, iterations=2)
        ring = grown & ~inside & (labels != label) & (ct <= 300)
        result[name] = {"muscle_hu": float(ct[inside].mean()), "ring_hu": float(ct[ring].mean())}
    return result


def subcutaneous_fat(tissue: np.ndarray) -> np.ndarray:
    """Fat voxels connected to the skin: the outermost fat layer of each slice."""
    out = np.zeros(tissue.shape, dtype=bool)
    for k, t in enumerate(tissue):
        body = ndimage.binary_fill_holes(t > 0)
        rim = body & ~ndimage.binary_erosion(body, iterations=2)
        fat, _ = ndimage.label(t == FAT)
        ids = np.unique(fat[rim & (fat > 0)])
        out[k] = np.isin(fat, ids[ids > 0]) & ndimage.binary_erosion(body, iterations=3)
    return out


def mean_abs_lncc(ct: np.ndarray, mri: np.ndarray, sigma: float = 5.0) -> float:
    """Mean |LNCC| (sigma in pixels) over the body between a CT (HU) and an MRI volume."""
    a = torch.from_numpy(np.clip(ct, -1000, 2000)[:, None]).float()
    b = torch.from_numpy(mri[:, None]).float()
    body = torch.from_numpy(ct[:, None] > -500)
    values = lncc_map(a, b, sigma).abs()
    return float(values[body].mean())


def implanted_sigma(subject, config: SynthConfig) -> dict[str, float]:
    """Muscle HU std on the implanted half (x side of the metal) in artefact and clean CT."""
    v = subject.volumes
    metal = v["metal_mask"].astype(bool)
    columns = np.arange(config.size)[None, None, :]
    left = np.nonzero(metal)[2].mean() >= config.size / 2
    half = (columns >= config.size / 2) if left else (columns < config.size / 2)
    muscle = (v["labels"] > 0) & np.broadcast_to(half, metal.shape) & ~metal
    return {"artefact": float(v["ct"][muscle].std()), "clean": float(v["ct_clean"][muscle].std())}


def measure(size: int, slices: int) -> dict:
    config = SynthConfig(subjects=3, size=size, slices=slices, seed=7, metal_fraction=1.0)
    started = time.perf_counter()
    implanted = simulate_subject(config, 0, True)
    seconds = time.perf_counter() - started
    clean = simulate_subject(config, 1, False)
    other = simulate_subject(config, 2, False)
    v = clean.volumes
    muscle = (clean.tissue == MUSCLE) & (v["labels"] > 0)
    fat = subcutaneous_fat(clean.tissue)
    spacing = (config.voxel_mm[2], config.voxel_mm[1], config.voxel_mm[0])
    dice = propagate_pair(
        "clean",
        MRIVolume("a", other.volumes["mri_clean"], other.volumes["labels"], spacing),
        MRIVolume("b", v["mri_clean"], v["labels"], spacing),
        default_registration(),
    ).dice
    return {
        "size": size,
        "slices": slices,
        "ct_contrast": ct_contrast(v["ct_clean"], v["labels"]),
        "mri_fat_over_muscle": float(v["mri_clean"][fat].mean() / v["mri_clean"][muscle].mean()),
        "lncc_ct_mri": mean_abs_lncc(v["ct_clean"], v["mri_clean"]),
        "implanted_muscle_sigma_hu": implanted_sigma(implanted, config),
        "dice_clean": dice,
        "seconds_per_slice_one_process": seconds / slices,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--slices", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(json.dumps(measure(args.size, args.slices), indent=1))


if __name__ == "__main__":
    main()
