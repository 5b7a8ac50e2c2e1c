"""Correcting whole volumes with a trained model (`madn correct`).

For a CT (and, for two-channel models, its registered MRI) of any size, spacing and orientation:
1. resample onto an axis-aligned grid over the CT's box whose in-plane field of view fits the
   model's `image_size` (the MRI through the identity transform: it must already be registered),
   and pad each slice to `image_size` x `image_size`;
2. map intensities as ingestion does (CT window [-1000, 2000] HU; MRI robust percentiles);
3. run `model.correct` slice by slice in batches (GPU when available);
4. map back to HU / the MRI's range, resample back onto each input's own grid, and write NIfTI
   volumes with the input's size, spacing, origin and direction. Voxels above the CT window
   (metal) keep their input HU: the network's output range stops at the window.
Resampling to the model's grid and back smooths detail finer than that grid's spacing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from tqdm.auto import tqdm

from madn_core.checkpoint import load_model
from madn_core.trainer import resolve_device
from pipelines.data.dataset import channels_for_variant
from pipelines.data.intensity import (
    IntensityConfig,
    hu_to_unit,
    mri_range,
    mri_to_unit,
    unit_to_hu,
    unit_to_mri,
)
from pipelines.data.volumes import read_volume, reference_grid, resample
from pipelines.io.atomic import atomic_path


class CorrectionError(ValueError):
    """The model and the inputs do not fit together; the message says how."""


@dataclass
class CorrectionResult:
    """Paths of the written volumes by modality ("ct", "mri")."""

    outputs: dict[str, Path]
    slices: int


def _pad(volume: np.ndarray, size: int, fill: float) -> tuple[np.ndarray, tuple[int, int]]:
    out = np.full((volume.shape[0], size, size), fill, np.float32)
    top, left = (size - volume.shape[1]) // 2, (size - volume.shape[2]) // 2
    out[:, top : top + volume.shape[1], left : left + volume.shape[2]] = volume
    return out, (top, left)


def _as_image(array: np.ndarray, grid: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.CopyInformation(grid)
    return image


def _write(image: sitk.Image, reference: sitk.Image, path: Path) -> Path:
    """Write `image` (float32) with `reference`'s geometry, atomically (temp name, rename)."""
    image.CopyInformation(reference)
    with atomic_path(path) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=True)
    return path


def correct_volume(
    model: torch.nn.Module | str | os.PathLike[str],
    ct: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    mri: str | os.PathLike[str] | None = None,
    device: str = "auto",
    batch_size: int = 16,
    intensity: IntensityConfig | None = None,
    progress: bool = True,
) -> CorrectionResult:
    """Correct the given volume(s) and write `<out_dir>/ct_corrected.nii.gz` (HU) and/or
    `mri_corrected.nii.gz`. `model`: a MADN (or madn_core Corrector) or a checkpoint path."""
    torch_device = resolve_device(device)
    net = (
        model
        if isinstance(model, torch.nn.Module)
        else load_model(model, map_location=torch_device)
    )
    net = net.to(torch_device).eval()
    variant = net.config.variant
    channels = channels_for_variant(variant)
    given = {name for name, path in (("ct", ct), ("mri", mri)) if path is not None}
    if given != set(channels):
        wanted = " and ".join(f"--{c}" for c in channels)
        raise CorrectionError(
            f"the model is a {variant} model that takes {'+'.join(channels).upper()}: "
            f"pass {wanted} (got {', '.join(sorted(f'--{g}' for g in given)) or 'no volume'})"
        )
    intensity = intensity or IntensityConfig()
    size = net.config.image_size
    images = {
        name: read_volume(path, f"{name} volume")
        for name, path in (("ct", ct), ("mri", mri))
        if path is not None
    }
    anchor = images["ct"] if "ct" in images else images["mri"]
    grid = reference_grid(anchor, size, None)
    units: dict[str, np.ndarray] = {}
    params: dict[str, tuple[float, float]] = {}
    offsets = (0, 0)
    shape = grid.GetSize()[::-1]
    for name, image in images.items():
        array = resample(image, grid, default=intensity.ct_min if name == "ct" else 0.0)
        if name == "ct":
            params[name] = (intensity.ct_min, intensity.ct_max)
            unit = hu_to_unit(array, *params[name])
        else:
            params[name] = mri_range(array, intensity.mri_percentiles)
            unit = mri_to_unit(array, *params[name])
        units[name], offsets = _pad(unit, size, -1.0)
    stacked = np.stack([units[c] for c in channels], axis=1)
    corrected = np.empty_like(stacked)
    bar = tqdm(total=len(stacked), desc="correct", unit="slice", disable=not progress)
    with torch.no_grad():
        for start in range(0, len(stacked), batch_size):
            batch = torch.from_numpy(stacked[start : start + batch_size]).to(torch_device)
            corrected[start : start + batch_size] = (
                net.correct(batch).float().clamp(-1, 1).cpu().numpy()
            )
            bar.update(len(batch))
    bar.close()
    top, left = offsets
    outputs: dict[str, Path] = {}
    out = Path(out_dir)
    for c, name in enumerate(channels):
        unit = corrected[:, c, top : top + shape[1], left : left + shape[2]]
        values = (
            unit_to_hu(unit, *params[name]) if name == "ct" else unit_to_mri(unit, *params[name])
        )
        original = images[name]
        back = resample(_as_image(values, grid), original)
        if name == "ct":
            source = sitk.GetArrayFromImage(sitk.Cast(original, sitk.sitkFloat32))
            back = np.where(source > intensity.ct_max, source, back)
        outputs[name] = _write(
            sitk.GetImageFromArray(back.astype(np.float32)),
            original,
            out / f"{name}_corrected.nii.gz",
        )
    return CorrectionResult(outputs=outputs, slices=len(stacked))
