"""Correcting a whole folder of cases, named as nnU-Net names its inputs (`madn correct -i -o`).

Input folder layout, one case per name:
- NIfTI files `CASE_0000.nii.gz` (the CT) and `CASE_0001.nii.gz` (the MRI), `.nii` too: the
  model reads the channels it needs (adn-ct: 0000, adn-mr: 0001, multichannel and madn: both);
- or a folder `CASE/` holding one DICOM series (the CT), or `CASE/0000/` and `CASE/0001/`
  DICOM series (CT and MRI).
Outputs get the same names in the output folder (`CASE_0000.nii.gz` corrected CT in HU,
`CASE_0001.nii.gz` corrected MRI), so corrected cases feed straight into an nnU-Net model. The
MRI is registered to the CT first when asked (`register`: none, rigid or bspline, with the
ingestion's registration code); the corrected MRI is then on the CT's grid.

One bad case gets a one-line error and the others go on; `skip_done` (`--continue`) skips
cases whose outputs all exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from tqdm.auto import tqdm

from pipelines.data.dataset import channels_for_variant
from pipelines.data.registration import RegistrationConfig, align_mri_to_ct
from pipelines.data.volumes import VolumeError, read_volume
from pipelines.inference.correct import CorrectionError, correct_volume

CHANNEL_FILES = {"ct": "0000", "mri": "0001"}
SUFFIXES = (".nii.gz", ".nii")


@dataclass
class FolderResult:
    """Cases corrected, skipped (already done) and failed (case -> one-line reason)."""

    corrected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _case_of(path: Path) -> tuple[str, str] | None:
    """(case, channel code) of an nnU-Net file name `CASE_0000.nii.gz`, else None."""
    name = path.name
    suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
    if suffix is None or not path.is_file():
        return None
    stem = name[: -len(suffix)]
    case, _, code = stem.rpartition("_")
    return (case, code) if case and len(code) == 4 and code.isdigit() else None


def find_cases(folder: str | os.PathLike[str]) -> dict[str, dict[str, Path]]:
    """Case name -> {channel code ("0000", "0001"): file or DICOM folder}, sorted by name."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"input folder {root} does not exist")
    cases: dict[str, dict[str, Path]] = {}
    for path in sorted(root.iterdir()):
        found = _case_of(path)
        if found:
            cases.setdefault(found[0], {})[found[1]] = path
        elif path.is_dir() and not path.name.startswith("."):
            codes = {c: path / c for c in CHANNEL_FILES.values() if (path / c).is_dir()}
            cases.setdefault(path.name, {}).update(codes or {"0000": path})
    if not cases:
        raise FileNotFoundError(
            f"{root} holds no cases: expected CASE_0000.nii.gz (CT) / CASE_0001.nii.gz (MRI) "
            "files or one DICOM folder per case"
        )
    return dict(sorted(cases.items()))


def _inputs(
    case: str, files: dict[str, Path], channels: tuple[str, ...], register: RegistrationConfig
) -> dict[str, sitk.Image]:
    """The volumes the model needs for one case (MRI registered to the CT when asked)."""
    images = {}
    for channel in channels:
        code = CHANNEL_FILES[channel]
        if code not in files:
            raise CorrectionError(f"case {case}: no {case}_{code} ({channel.upper()}) input")
        images[channel] = read_volume(files[code], f"case {case} {channel}")
    if "mri" in images and "ct" in images and register.mode != "none":
        images["mri"] = align_mri_to_ct(images["ct"], images["mri"], register)
    return images


def correct_folder(
    model: Any,
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    register: str = "none",
    skip_done: bool = False,
    progress: bool = True,
    **options: Any,
) -> FolderResult:
    """Correct every case of `in_dir` into `out_dir` (module doc). `model`: a loaded MADN or
    Corrector; `options` go to `correct_volume` (device, batch_size, all_slices)."""
    cases = find_cases(in_dir)
    channels = channels_for_variant(model.config.variant)
    config = RegistrationConfig(mode=register)  # type: ignore[arg-type]
    out = Path(out_dir)
    result = FolderResult()
    for case, files in tqdm(cases.items(), desc="cases", unit="case", disable=not progress):
        names = {c: f"{case}_{CHANNEL_FILES[c]}.nii.gz" for c in channels}
        if skip_done and all((out / n).is_file() for n in names.values()):
            result.skipped.append(case)
            continue
        try:
            images = _inputs(case, files, channels, config)
            correct_volume(
                model,
                images.get("ct"),
                out,
                mri=images.get("mri"),
                progress=False,
                names=names,
                **options,
            )
        except (CorrectionError, VolumeError, ValueError, RuntimeError, OSError) as error:
            result.failed[case] = str(error).strip().splitlines()[0] if str(error) else repr(error)
            continue
        result.corrected.append(case)
    return result
