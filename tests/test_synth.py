"""Acceptance checks of the synthetic data: physics that a painted-streak fake would fail."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

from pipelines.synth.ct import PolychromaticScanner
from pipelines.synth.generate import SynthConfig, simulate_subject, synthesize
from pipelines.synth.mri import MRIProtocol, susceptibility_artefact
from pipelines.synth.phantom import make_phantom
from pipelines.synth.tissues import FAT, MUSCLE, TISSUES

CONFIG = SynthConfig(subjects=2, size=128, slices=8, seed=3)


@pytest.fixture(scope="module")
def implanted():
    return simulate_subject(CONFIG, 0, has_metal=True)


@pytest.fixture(scope="module")
def distance_to_metal_mm(implanted) -> np.ndarray:
    metal = implanted.volumes["metal_mask"].astype(bool)
    pixel = CONFIG.voxel_mm[1]
    return np.stack(
        [
            ndimage.distance_transform_edt(~m) * pixel if m.any() else np.full(m.shape, np.inf)
            for m in metal
        ]
    )


def test_water_calibration_and_noise() -> None:
    size = 128
    scanner = PolychromaticScanner(size, 38.4 / size)
    c = (np.arange(size) + 0.5 - size / 2) * 38.4 / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    radius = np.hypot(xx, yy)
    densities = torch.zeros(1, 4, size, size)
    densities[0, 0] = torch.from_numpy((radius < 12).astype(np.float32))
    hu = scanner.scan(densities, torch.Generator().manual_seed(0))[0].numpy()
    assert abs(hu[radius < 8].mean()) < 5.0
    assert 2.0 < hu[radius < 8].std() < 40.0
    assert abs(hu[radius > 14].mean() + 1000.0) < 5.0


def test_streaks_far_from_implant(implanted, distance_to_metal_mm) -> None:
    v = implanted.volumes
    muscle = ndimage.binary_erosion(implanted.tissue == MUSCLE, iterations=2)
    far = muscle & (distance_to_metal_mm > 60.0) & np.isfinite(distance_to_metal_mm)
    assert far.sum() > 200
    assert v["ct"][far].std() >= 2.0 * v["ct_clean"][far].std()


def test_dark_and_bright_streaks_near_implant(implanted, distance_to_metal_mm) -> None:
    v = implanted.volumes
    soft = np.isin(implanted.tissue, [MUSCLE, FAT])
    near = soft & (distance_to_metal_mm > 3.0) & (distance_to_metal_mm < 40.0)
    assert (v["ct"][near] < -300).sum() > 10
    assert (v["ct"][near] > 300).sum() > 10
    assert (v["ct_clean"][near] < -300).mean() < 0.01


def test_clean_subject_has_no_artefact() -> None:
    subject = simulate_subject(CONFIG, 1, has_metal=False)
    v = subject.volumes
    assert not v["metal_mask"].any()
    assert np.array_equal(v["ct"], v["ct_clean"]) and np.array_equal(v["mri"], v["mri_clean"])
    muscle = ndimage.binary_erosion(subject.tissue == MUSCLE, iterations=2)
    assert (
        abs(v["ct"][muscle].mean() - 50.0) < 25.0
    )  # nominal muscle HU, within per-subject variation


def test_mri_void_larger_than_implant(implanted) -> None:
    v = implanted.volumes
    metal = v["metal_mask"].astype(bool)
    body = v["mri_clean"] > 0.2
    void = body & (v["mri"] < 0.3 * v["mri_clean"]) & ~metal
    assert void.sum() > metal.sum()


def test_displacement_grows_with_field() -> None:
    rng = np.random.default_rng(0)
    phantom = make_phantom(96, 8, rng, "left")
    t1 = np.array([t.t1 for t in TISSUES])[phantom.tissue]
    chi = np.array([t.chi_ppm for t in TISSUES])[phantom.tissue]
    voxel = (15.0, 4.0, 4.0)
    shifts, affected = [], []
    for b0 in (0.5, 1.5, 3.0):
        signal, shift = susceptibility_artefact(
            t1, chi, phantom.metal_mask, voxel, MRIProtocol(b0_tesla=b0)
        )
        clean = np.array([t.t1 for t in TISSUES])[phantom.tissue_clean]
        shifts.append(np.abs(shift).max())
        affected.append((np.abs(signal - clean) > 0.1).sum())
    assert shifts[1] == pytest.approx(3 * shifts[0], rel=1e-6) and shifts[2] == pytest.approx(
        2 * shifts[1], rel=1e-6
    )
    assert affected[0] < affected[1] < affected[2]


def test_same_seed_same_volumes() -> None:
    config = SynthConfig(subjects=1, size=64, slices=3, seed=11)
    a = simulate_subject(config, 0, True).volumes
    b = simulate_subject(config, 0, True).volumes
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = simulate_subject(SynthConfig(subjects=1, size=64, slices=3, seed=12), 0, True).volumes
    assert not np.array_equal(a["ct"], c["ct"])


def test_written_volumes_and_manifest(tmp_path: Path) -> None:
    config = SynthConfig(subjects=2, metal_fraction=0.5, size=64, slices=3, seed=1)
    manifest = synthesize(config, tmp_path, progress=False)
    lines = manifest.read_text().splitlines()
    assert (
        lines[0] == "subject_id,has_metal,implant_side,ct,mri,labels,metal_mask,ct_clean,mri_clean"
    )
    assert (
        len(lines) == 3 and lines[1].startswith("sub-000,1,") and lines[2].startswith("sub-001,0,,")
    )
    image = sitk.ReadImage(str(tmp_path / "sub-000" / "ct.nii.gz"))
    assert image.GetSize() == (64, 64, 3)
    assert image.GetSpacing() == pytest.approx((6.0, 6.0, 40.0))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
