"""Correcting whole volumes with a trained model (`madn correct`).

For a CT (and, for two-channel models, its registered MRI) of any size, spacing, orientation
and slice count (one slice included):
1. resample onto an axis-aligned grid over the CT's box at the in-plane spacing the model was
   trained at (`config.data.spacing_mm`; the MRI through the identity transform: it must already
   be registered). Checkpoints that do not record a spacing fall back to fitting the field of
   view into `image_size` pixels;
2. map intensities with the model's recorded mapping (CT window, MRI robust percentiles). A
   model trained on CTs that went through a classical MAR first (`config.data.ct_prior`, "li"
   or "nmar") gets its CT slices with metal through the same method here, on the model grid;
3. run the fully convolutional network on whole slices, padded to a multiple of 2**num_down
   (GPU when available). Slices without metal (no voxel in the metal mask, or without one no CT
   voxel above METAL_HU) are left as they are unless `all_slices` is set: a MAR model has
   nothing to remove there, and any change would be harm;
4. map back to HU / the MRI's range, resample back onto each input's own grid, and write NIfTI
   volumes with the input's size, spacing, origin and direction. The implant's own CT voxels
   keep their input HU: the network's output range stops at the window's top. Other voxels above
   the window (the bright rim the metal blooms into) take the network's output.

The implant's voxels are the given metal mask, or else `segment_metal`'s: each region above
METAL_HU down to its half-maximum edge, so that the rim is not taken for metal (by the CT prior's
metal trace, the implant band, or the voxels kept in step 4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from tqdm.auto import tqdm

from madn_core.checkpoint import load_model
from madn_core.trainer import resolve_device
from pipelines.baselines.mar import apply_ct_prior
from pipelines.baselines.metal import segment_metal
from pipelines.data.dataset import channels_for_variant
from pipelines.data.intensity import (
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
    corrected: int = 0


def _pad(volume: np.ndarray, multiple: int, fill: float) -> tuple[np.ndarray, tuple[int, int]]:
    """(Z, H, W) -> (Z, H', W') with H', W' the next multiples of `multiple`, centred;
    returns the padded array and the (top, left) offset of the original."""
    height, width = volume.shape[1:]
    padded_h = -(-height // multiple) * multiple
    padded_w = -(-width // multiple) * multiple
    out = np.full((volume.shape[0], padded_h, padded_w), fill, np.float32)
    top, left = (padded_h - height) // 2, (padded_w - width) // 2
    out[:, top : top + height, left : left + width] = volume
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


OUTPUT_NAMES = {"ct": "ct_corrected.nii.gz", "mri": "mri_corrected.nii.gz"}


def _load_network(model: torch.nn.Module | str | os.PathLike[str], device: torch.device) -> Any:
    net = model if isinstance(model, torch.nn.Module) else load_model(model, map_location=device)
    return net.to(device).eval()


def _check_channels(variant: str, channels: tuple[str, ...], given: set[str]) -> None:
    if given != set(channels):
        wanted = " and ".join(f"--{c}" for c in channels)
        raise CorrectionError(
            f"the model is a {variant} model that takes {'+'.join(channels).upper()}: "
            f"pass {wanted} (got {', '.join(sorted(f'--{g}' for g in given)) or 'no volume'})"
        )


def model_grid(anchor: sitk.Image, config: Any) -> sitk.Image:
    """The grid the model sees: the anchor's box at the model's in-plane spacing and the
    anchor's own slice spacing; legacy models without a spacing fit image_size pixels."""
    spacing = float(config.data.spacing_mm)
    if spacing <= 0:
        return reference_grid(anchor, config.image_size, None)
    return reference_grid(anchor, 1, (spacing, spacing, anchor.GetSpacing()[2]))


def _to_units(
    images: dict[str, sitk.Image], grid: sitk.Image, config: Any, metal: np.ndarray | None
) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Each modality resampled onto `grid` and mapped to [-1, 1] (the CT through the model's
    prior, with `metal`: (Z, H, W) bool on `grid`); (units, mapping params)."""
    ct_min, ct_max = config.data.ct_window_hu
    units: dict[str, np.ndarray] = {}
    params: dict[str, tuple[float, float]] = {}
    for name, image in images.items():
        array = resample(image, grid, default=ct_min if name == "ct" else 0.0)
        if name == "ct":
            params[name] = (ct_min, ct_max)
            prior = _with_ct_prior(array, metal, grid, config)
            units[name] = hu_to_unit(prior, ct_min, ct_max)
        else:
            params[name] = mri_range(array, tuple(config.data.mri_percentiles))
            units[name] = mri_to_unit(array, *params[name])
    return units, params


def _with_ct_prior(
    ct_hu: np.ndarray, metal: np.ndarray | None, grid: sitk.Image, config: Any
) -> np.ndarray:
    """(Z, H, W) HU on `grid` -> the same after the model's `data.ct_prior` (`metal`: (Z, H, W)
    bool, None: `segment_metal`'s). LI and NMAR leave slices without metal as they are;
    prior "none" returns `ct_hu` itself."""
    if config.data.ct_prior == "none":
        return ct_hu
    return apply_ct_prior(config.data.ct_prior, ct_hu, metal, float(grid.GetSpacing()[0]))


def metal_voxels(
    images: dict[str, sitk.Image], grid: sitk.Image, mask: sitk.Image | None = None
) -> np.ndarray | None:
    """(Z, H, W) bool on `grid`: the given metal `mask` (nonzero voxels, nearest neighbour), or
    else `segment_metal` of the CT resampled onto `grid`; None without either."""
    if mask is not None:
        return resample(mask, grid, nearest=True) > 0
    if "ct" not in images:
        return None
    return segment_metal(resample(images["ct"], grid, default=-1000.0))


def metal_slices(metal: np.ndarray | None, slices: int) -> np.ndarray:
    """(Z,) bool: slices of `metal` (Z, H, W) with any metal voxel (all True without a CT)."""
    if metal is None:
        return np.ones(slices, bool)
    return metal.reshape(len(metal), -1).any(axis=1)


def _run_network(
    net: Any,
    stacked: np.ndarray,
    selected: np.ndarray,
    batch_size: int,
    progress: bool,
    metal: np.ndarray | None,
) -> np.ndarray:
    """(Z, C, H, W) in [-1, 1] -> the same with the `selected` slices corrected; `metal`:
    (Z, H, W) bool masks for the model's implant band, or None."""
    corrected = stacked.copy()
    indices = np.flatnonzero(selected)
    device = next(net.parameters()).device
    bar = tqdm(total=len(indices), desc="correct", unit="slice", disable=not progress)
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            chosen = indices[start : start + batch_size]
            batch = torch.from_numpy(np.ascontiguousarray(stacked[chosen])).to(device)
            mask = None if metal is None else torch.from_numpy(metal[chosen])[:, None].to(device)
            corrected[chosen] = net.correct(batch, mask).float().clamp(-1, 1).cpu().numpy()
            bar.update(len(chosen))
    bar.close()
    return corrected


def correct_images(
    net: Any,
    images: dict[str, sitk.Image],
    batch_size: int = 16,
    progress: bool = True,
    all_slices: bool = False,
    metal_mask: sitk.Image | None = None,
) -> tuple[dict[str, np.ndarray], int, int]:
    """Steps 1-4 of the module doc in memory: `images` by modality ("ct" in HU, "mri") ->
    (corrected (K, H, W) float32 arrays on each input's own grid and in its own units, slices
    on the model grid, slices the network ran on). `net`: a MADN or Corrector in eval mode.
    `metal_mask`: the implant's voxels (nonzero) on any grid over the scan; default:
    `segment_metal` of the CT."""
    config = net.config
    channels = channels_for_variant(config.variant)
    _check_channels(config.variant, channels, set(images))
    grid = model_grid(images["ct"] if "ct" in images else images["mri"], config)
    metal = metal_voxels(images, grid, metal_mask)
    units, params = _to_units(images, grid, config, metal)
    shape = grid.GetSize()[::-1]
    padded = {name: _pad(unit, 2**config.network.num_down, -1.0) for name, unit in units.items()}
    stacked = np.stack([padded[c][0] for c in channels], axis=1)
    selected = np.ones(len(stacked), bool) if all_slices else metal_slices(metal, len(stacked))
    if metal is not None:
        metal = _pad(metal.astype(np.float32), 2**config.network.num_down, 0.0)[0] > 0.5
    corrected = _run_network(net, stacked, selected, batch_size, progress, metal)
    top, left = padded[channels[0]][1]
    implant = _input_metal(images, metal_mask)
    keep = None if all_slices else _metal_free_rows(images, implant)
    arrays: dict[str, np.ndarray] = {}
    for c, name in enumerate(channels):
        unit = corrected[:, c, top : top + shape[1], left : left + shape[2]]
        rows = None if keep is None else keep.get(name)
        arrays[name] = _back_to_input(unit, name, params[name], grid, images[name], rows, implant)
    return arrays, len(stacked), int(selected.sum())


def correct_volume(
    model: torch.nn.Module | str | os.PathLike[str],
    ct: str | os.PathLike[str] | sitk.Image | None,
    out_dir: str | os.PathLike[str],
    mri: str | os.PathLike[str] | sitk.Image | None = None,
    device: str = "auto",
    batch_size: int = 16,
    progress: bool = True,
    all_slices: bool = False,
    names: dict[str, str] | None = None,
    metal_mask: str | os.PathLike[str] | sitk.Image | None = None,
) -> CorrectionResult:
    """Correct the given volume(s) (paths, or images already read) and write
    `<out_dir>/ct_corrected.nii.gz` (HU) and/or `mri_corrected.nii.gz` (see module doc), or the
    file names in `names` by modality. `model`: a MADN (or madn_core Corrector) or a checkpoint
    path; `all_slices`: correct slices without metal too; `metal_mask`: the implant's voxels
    (a label volume over the same box as the scan, nonzero = metal), used instead of the CT
    segmentation for the slices with metal, the implant band, a CT prior's metal trace and the
    voxels that keep their input HU."""
    net = _load_network(model, resolve_device(device))
    channels = channels_for_variant(net.config.variant)
    given = {name: source for name, source in (("ct", ct), ("mri", mri)) if source is not None}
    _check_channels(net.config.variant, channels, set(given))
    images = {
        name: source if isinstance(source, sitk.Image) else read_volume(source, f"{name} volume")
        for name, source in given.items()
    }
    files = {**OUTPUT_NAMES, **(names or {})}
    mask = _read_metal_mask(metal_mask, images)
    arrays, slices, corrected = correct_images(
        net, images, batch_size, progress, all_slices, metal_mask=mask
    )
    outputs = {
        name: _write(sitk.GetImageFromArray(array), images[name], Path(out_dir) / files[name])
        for name, array in arrays.items()
    }
    return CorrectionResult(outputs=outputs, slices=slices, corrected=corrected)


def _read_metal_mask(
    source: str | os.PathLike[str] | sitk.Image | None, images: dict[str, sitk.Image]
) -> sitk.Image | None:
    """The metal mask as an image, checked to cover the scan it belongs to (same size as the
    CT, or the MRI without a CT), with at least one metal voxel."""
    if source is None:
        return None
    mask = source if isinstance(source, sitk.Image) else read_volume(source, "metal mask")
    scan = images.get("ct", images.get("mri"))
    name = source if not isinstance(source, sitk.Image) else "the metal mask"
    if scan is not None and mask.GetSize() != scan.GetSize():
        raise CorrectionError(
            f"{name}: size {mask.GetSize()}, expected the scan's {scan.GetSize()} (a label "
            "volume on the CT's grid, nonzero = metal)"
        )
    if not sitk.GetArrayViewFromImage(mask).any():
        raise CorrectionError(f"{name}: no metal voxel (expected nonzero where the implant is)")
    return mask


def _input_metal(
    images: dict[str, sitk.Image], metal_mask: sitk.Image | None = None
) -> np.ndarray | None:
    """(K, H, W) bool on the CT's own grid: the `metal_mask`'s nonzero voxels when it lies on
    that grid, else `segment_metal` of the CT; None without a CT."""
    if "ct" not in images:
        return None
    ct = images["ct"]
    if metal_mask is not None and metal_mask.GetSize() == ct.GetSize():
        return sitk.GetArrayViewFromImage(metal_mask) > 0
    return segment_metal(sitk.GetArrayViewFromImage(ct))


def _metal_free_rows(
    images: dict[str, sitk.Image], implant: np.ndarray | None
) -> dict[str, np.ndarray]:
    """modality -> (K,) bool over the input array's first axis: rows (slices) of the input
    without metal (`implant`: `_input_metal`'s), i.e. rows to return exactly as they came in.
    An MRI on another grid than the CT keeps all rows only when the whole CT is metal-free."""
    if implant is None:
        return {}
    free = ~implant.reshape(len(implant), -1).any(axis=1)
    rows = {"ct": free}
    if "mri" in images:
        mri_rows = images["mri"].GetSize()[2]
        same = images["mri"].GetSize() == images["ct"].GetSize()
        rows["mri"] = free if same else np.full(mri_rows, bool(free.all()))
    return rows


def _back_to_input(
    unit: np.ndarray,
    name: str,
    params: tuple[float, float],
    grid: sitk.Image,
    original: sitk.Image,
    unchanged_rows: np.ndarray | None = None,
    implant: np.ndarray | None = None,
) -> np.ndarray:
    """A corrected (Z, H, W) unit volume mapped back to the input's values and grid, (K, H, W)
    float32. `unchanged_rows` (K,) bool: input rows returned as the input's own voxels (no
    resampling round trip). CT voxels of the implant (`implant`: (K, H, W) bool on the input's
    grid, `_input_metal`'s) keep their input HU; every other voxel is the network's, so the
    bright rim the implant blooms into is corrected too, up to the window's top."""
    values = unit_to_hu(unit, *params) if name == "ct" else unit_to_mri(unit, *params)
    back = resample(_as_image(values, grid), original)
    source = sitk.GetArrayFromImage(sitk.Cast(original, sitk.sitkFloat32))
    if name == "ct" and implant is not None:
        back = np.where(implant, source, back)
    if unchanged_rows is not None:
        back[unchanged_rows] = source[unchanged_rows]
    return back.astype(np.float32)
