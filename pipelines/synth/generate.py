"""Generate synthetic subjects and write them as NIfTI volumes with a manifest.csv.

Per subject (folder DIR/<subject_id>/): ct, mri, labels, metal_mask, ct_clean, mri_clean
(.nii.gz, float32 HU / relative T1 / uint8). ct_clean and mri_clean are the same anatomy with the
metal replaced by bone, through the same simulation and the same noise draw, so they differ
from ct and mri by the artefact alone; subjects without metal have ct == ct_clean.
DIR/manifest.csv has one row per subject: subject_id, has_metal, implant_side and each volume's
path relative to DIR, exactly as a user would describe real data for `madn ingest`.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from tqdm.auto import tqdm

from madn_core.umask import apply_umask
from pipelines.io.atomic import atomic_path
from pipelines.synth.ct import PolychromaticScanner, ScanProtocol
from pipelines.synth.mri import MRIProtocol, rician, smooth_bias, susceptibility_artefact
from pipelines.synth.phantom import check_geometry, make_phantom
from pipelines.synth.tissues import TISSUES

VOLUMES = ("ct", "mri", "labels", "metal_mask", "ct_clean", "mri_clean")
MANIFEST_COLUMNS = ("subject_id", "has_metal", "implant_side", *VOLUMES)


@dataclass
class SynthConfig:
    """size: in-plane pixels; slices: axial slices; fov_mm: in-plane field of view (1.5 mm pixels
    at 256); extent_mm: cranio-caudal extent covered by the slices; bilateral_fraction: the
    share of implanted subjects with a prosthesis on both sides."""

    subjects: int = 4
    metal_fraction: float = 0.5
    bilateral_fraction: float = 0.0
    size: int = 256
    slices: int = 32
    seed: int = 0
    fov_mm: float = 384.0
    extent_mm: float = 120.0
    ct: ScanProtocol = field(default_factory=ScanProtocol)
    mri: MRIProtocol = field(default_factory=MRIProtocol)

    def __post_init__(self) -> None:
        if self.subjects < 1:
            raise ValueError(f"--subjects must be >= 1, got {self.subjects}")
        if not 0.0 <= self.metal_fraction <= 1.0:
            raise ValueError(f"--metal-fraction must be in [0, 1], got {self.metal_fraction}")
        if not 0.0 <= self.bilateral_fraction <= 1.0:
            raise ValueError(
                f"--bilateral-fraction must be in [0, 1], got {self.bilateral_fraction}"
            )
        if self.size < 32 or self.size % 4:
            raise ValueError(f"--size must be >= 32 and divisible by 4, got {self.size}")
        check_geometry(self.size, self.fov_mm)
        if self.slices < 1:
            raise ValueError(f"--slices must be >= 1, got {self.slices}")

    @property
    def voxel_mm(self) -> tuple[float, float, float]:
        """(z, y, x) voxel size in mm."""
        pixel = self.fov_mm / self.size
        return (self.extent_mm / self.slices, pixel, pixel)


@dataclass
class Subject:
    """volumes: name -> (K, S, S) array as written; tissue: (K, S, S) tissue ids of the anatomy
    without metal (what the simulation was built from, for checks and figures)."""

    subject_id: str
    side: str | None
    volumes: dict[str, np.ndarray]
    tissue: np.ndarray


def subject_id(index: int) -> str:
    return f"sub-{index:03d}"


def subject_plan(config: SynthConfig) -> list[tuple[str, bool]]:
    """(subject_id, has_metal) for every subject: the first round(fraction * n) have metal."""
    with_metal = round(config.metal_fraction * config.subjects)
    return [(subject_id(i), i < with_metal) for i in range(config.subjects)]


def implant_side(config: SynthConfig, index: int, rng: np.random.Generator) -> str:
    """The implant side of implanted subject `index`: "both" for the first
    round(bilateral_fraction * implanted) of them, else "left" or "right" at random."""
    implanted = round(config.metal_fraction * config.subjects)
    bilateral = round(config.bilateral_fraction * implanted)
    side = str(rng.choice(["left", "right"]))
    return "both" if index < bilateral else side


def simulate_subject(
    config: SynthConfig, index: int, has_metal: bool, device: str = "cpu"
) -> Subject:
    """Simulate one subject; deterministic in (config.seed, index)."""
    rng = np.random.default_rng([config.seed, index])
    side = implant_side(config, index, rng) if has_metal else None
    phantom = make_phantom(config.size, config.slices, rng, side, config.fov_mm, config.extent_mm)
    density_scale = 1.0 + rng.normal(0.0, 0.01, len(TISSUES)).astype(np.float32)
    t1_scale = 1.0 + rng.normal(0.0, 0.05, len(TISSUES))
    noise_seed = int(rng.integers(2**31))

    scanner = PolychromaticScanner(
        config.size, config.fov_mm / config.size / 10.0, config.ct, device
    )

    def scan(tissue: np.ndarray) -> np.ndarray:
        generator = torch.Generator(device=scanner.device).manual_seed(noise_seed)
        slices = []
        for start in range(0, tissue.shape[0], 4):
            chunk = tissue[start : start + 4]
            maps = scanner.material_maps(
                chunk, density_scale[chunk] * phantom.texture[start : start + 4]
            )
            slices.append(scanner.scan(maps, generator).cpu().numpy())
        return np.concatenate(slices).astype(np.float32)

    ct_clean = scan(phantom.tissue_clean)
    ct = scan(phantom.tissue) if has_metal else ct_clean.copy()

    # relative signal per tissue in the chosen contrast ("t1" or "t2")
    t1 = np.array([getattr(t, config.mri.contrast) for t in TISSUES]) * t1_scale
    chi = np.array([t.chi_ppm for t in TISSUES])
    bias = smooth_bias(phantom.tissue.shape, rng, config.mri.bias) * (
        1.0 + 3.0 * (phantom.texture - 1.0)
    )
    clean_signal = t1[phantom.tissue_clean] * bias
    mri_clean = rician(clean_signal, config.mri.noise, np.random.default_rng(noise_seed))
    if has_metal:
        signal, _ = susceptibility_artefact(
            t1[phantom.tissue] * bias,
            chi[phantom.tissue],
            phantom.metal_mask,
            config.voxel_mm,
            config.mri,
        )
        mri = rician(signal, config.mri.noise, np.random.default_rng(noise_seed))
    else:
        mri = mri_clean.copy()
    volumes = {
        "ct": ct,
        "mri": mri.astype(np.float32),
        "labels": phantom.labels,
        "metal_mask": phantom.metal_mask.astype(np.uint8),
        "ct_clean": ct_clean,
        "mri_clean": mri_clean.astype(np.float32),
    }
    return Subject(subject_id(index), side, volumes, phantom.tissue_clean)


def write_nifti(volume: np.ndarray, path: Path, voxel_mm: tuple[float, float, float]) -> None:
    """Write a (K, S, S) array as NIfTI with spacing (x, y, z) = voxel_mm reversed."""
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((voxel_mm[2], voxel_mm[1], voxel_mm[0]))
    sitk.WriteImage(image, str(path), useCompression=True)


def _write_subject(config: SynthConfig, index: int, has_metal: bool, out: str) -> dict[str, str]:
    subject = simulate_subject(config, index, has_metal)
    final = Path(out) / subject.subject_id
    staging = Path(tempfile.mkdtemp(prefix=f".{subject.subject_id}.", dir=out))
    apply_umask(staging)  # mkdtemp makes 0700; the folder is renamed into place
    try:
        for name, volume in subject.volumes.items():
            write_nifti(volume, staging / f"{name}.nii.gz", config.voxel_mm)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    row = {
        "subject_id": subject.subject_id,
        "has_metal": str(int(has_metal)),
        "implant_side": subject.side or "",
    }
    row.update({name: f"{subject.subject_id}/{name}.nii.gz" for name in VOLUMES})
    return row


def synthesize(
    config: SynthConfig, out_dir: str | os.PathLike[str], workers: int = 1, progress: bool = True
) -> Path:
    """Write every subject and DIR/manifest.csv (written last, atomically). Returns its path."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test."):
            pass
    except OSError as error:
        raise ValueError(f"cannot write to output folder {out}: {error.strerror}") from error
    plan = subject_plan(config)
    bar = tqdm(total=len(plan), desc="synth", unit="subject", disable=not progress)
    rows: dict[str, dict[str, str]] = {}
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, context, initializer=torch.set_num_threads, initargs=(1,)
        ) as pool:
            futures = [
                pool.submit(_write_subject, config, i, metal, str(out))
                for i, (_, metal) in enumerate(plan)
            ]
            for future in futures:
                row = future.result()
                rows[row["subject_id"]] = row
                bar.update(1)
    else:
        for i, (_, metal) in enumerate(plan):
            row = _write_subject(config, i, metal, str(out))
            rows[row["subject_id"]] = row
            bar.update(1)
    bar.close()
    manifest = out / "manifest.csv"
    with atomic_path(manifest) as temporary, temporary.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for subject_id, _ in plan:
            writer.writerow(rows[subject_id])
    return manifest
