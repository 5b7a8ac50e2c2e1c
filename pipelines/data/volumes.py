"""Reading, checking and resampling 3D volumes with SimpleITK (NIfTI files or DICOM folders).

Arrays follow SimpleITK's order: (z, y, x) for an image whose spacing and origin are (x, y, z) in
millimetres, in the LPS patient frame.
"""

from __future__ import annotations

import os
import zlib
from itertools import product
from pathlib import Path

import numpy as np

from pipelines.io.lazy_module import LazyModule

nib = LazyModule("nibabel", "reading NIfTI volumes")
sitk = LazyModule("SimpleITK", "volume resampling")


class VolumeError(ValueError):
    """A volume cannot be used; the message names the subject and the file."""


def _check_nifti(file: Path, what: str) -> None:
    """SimpleITK's NIfTI reader fills a truncated file's missing voxels and turns NaN into 0
    without a word, so NIfTI files are also decoded with nibabel: every byte must be there and
    every voxel finite."""
    try:
        image = nib.load(str(file))
        data = np.asarray(image.dataobj)
    except (EOFError, OSError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as error:
        raise VolumeError(f"{what}: {file} is truncated or corrupt ({error})") from None
    if np.issubdtype(data.dtype, np.floating):
        bad = int((~np.isfinite(data)).sum())
        if bad:
            raise VolumeError(f"{what}: {file} has {bad} NaN or infinite voxels")


def read_volume(path: str | os.PathLike[str], what: str) -> sitk.Image:
    """Read a NIfTI (or any SimpleITK format) file or a DICOM series folder as a 3D image.

    what: how to name the volume in errors, e.g. "subject sub-001 ct". Raises VolumeError for an
    unreadable or truncated file, an image that is not 3D, or non-finite voxels."""
    file = Path(path)
    try:
        if file.is_dir():
            series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(file))
            if not series:
                raise VolumeError(f"{what}: folder {file} holds no DICOM series")
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(file), series[0])
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            image = reader.Execute()
        else:
            if file.name.lower().endswith((".nii", ".nii.gz")):
                _check_nifti(file, what)
            image = sitk.ReadImage(str(file))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()
        detail = next((line for line in reason if "rror" in line), reason[-1] if reason else "")
        raise VolumeError(f"{what}: cannot read {file} ({detail.strip()[:160]})") from None
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    size = image.GetSize()
    if image.GetDimension() != 3 or min(size[:2]) < 2:
        raise VolumeError(
            f"{what}: {file} is {image.GetDimension()}D of size {size}, expected a 3D volume "
            "of at least 2 x 2 pixels per slice (one slice is fine)"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(f"{what}: {file} has vector pixels, expected a scalar volume")
    array = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise VolumeError(f"{what}: {file} has {bad} NaN or infinite voxels")
    return image


def physical_bounds(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) corners (x, y, z in mm) of the axis-aligned box around the image's voxels."""
    size = image.GetSize()
    corners = np.array(
        [
            image.TransformContinuousIndexToPhysicalPoint([c - 0.5 for c in corner])
            for corner in product(*[(0, s) for s in size])
        ]
    )
    return corners.min(axis=0), corners.max(axis=0)


def overlap_fraction(a: sitk.Image, b: sitk.Image) -> float:
    """Volume of the intersection of the two bounding boxes over the smaller box's volume."""
    (a_low, a_high), (b_low, b_high) = physical_bounds(a), physical_bounds(b)
    extent = np.clip(np.minimum(a_high, b_high) - np.maximum(a_low, b_low), 0.0, None)
    smaller = min(np.prod(a_high - a_low), np.prod(b_high - b_low))
    return float(np.prod(extent) / smaller) if smaller > 0 else 0.0


def reference_grid(
    image: sitk.Image, size: int, spacing_mm: tuple[float, float, float] | None
) -> sitk.Image:
    """An axis-aligned (identity direction) grid covering `image`'s box.

    spacing_mm: (x, y, z). None: in-plane spacing = the finer of the image's own in-plane
    spacings, coarsened if needed so that the field of view fits `size` pixels; slice spacing =
    the image's own z spacing."""
    low, high = physical_bounds(image)
    extent = high - low
    if spacing_mm is None:
        native = min(image.GetSpacing()[0], image.GetSpacing()[1])
        in_plane = max(native, float(max(extent[0], extent[1])) / size)
        spacing = np.array([in_plane, in_plane, image.GetSpacing()[2]])
    else:
        spacing = np.asarray(spacing_mm, dtype=float)
    voxels = np.maximum(np.round(extent / spacing).astype(int), 1)
    grid = sitk.Image([int(v) for v in voxels], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in spacing])
    grid.SetOrigin([float(v) for v in low + spacing / 2])
    grid.SetDirection(np.eye(3).ravel().tolist())
    return grid


def resample(
    image: sitk.Image,
    grid: sitk.Image,
    transform: sitk.Transform | None = None,
    nearest: bool = False,
    default: float = 0.0,
) -> np.ndarray:
    """Resample onto `grid` (optionally through `transform`, fixed grid -> moving image) and
    return the (z, y, x) array: float32, or the original integer type with `nearest`."""
    pixel = image.GetPixelID() if nearest else sitk.sitkFloat32
    moved = sitk.Resample(
        image if nearest else sitk.Cast(image, sitk.sitkFloat32),
        grid,
        transform or sitk.Transform(3, sitk.sitkIdentity),
        sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear,
        default,
        pixel,
    )
    return sitk.GetArrayFromImage(moved)
