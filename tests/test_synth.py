"""Acceptance checks of the synthetic data: physics that a painted-streak fake would fail."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

from pipelines.synth.ct import PolychromaticScanner, ScanProtocol
from pipelines.synth.generate import SynthConfig, simulate_subject, synthesize
from pipelines.synth.geometry import FanBeamCT, ParallelBeamCT
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


@pytest.mark.parametrize("geometry", ["fan", "parallel"])
def test_water_calibration_and_noise(geometry: str) -> None:
    size = 128
    scanner = PolychromaticScanner(size, 38.4 / size, ScanProtocol(geometry=geometry))
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
    # streaks reach far: muscle 60 mm or more from the metal is half as noisy again, or more
    assert v["ct"][far].std() >= 1.5 * v["ct_clean"][far].std()


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


def _disc_phantom(size: int) -> np.ndarray:
    c = np.arange(size) + 0.5 - size / 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    image = 0.2 * (np.hypot(xx, yy) < 0.3 * size)
    image += 0.3 * (np.hypot(xx - 0.12 * size, yy + 0.08 * size) < 0.06 * size)
    return image.astype(np.float32)


def test_fbp_agrees_with_scikit_image_and_fan_beam() -> None:
    """Parallel FBP against scikit-image's radon/iradon (an independent implementation) and
    the fan-beam FBP against both, on the same disc phantom."""
    from skimage.transform import iradon, radon

    size = 96
    image = _disc_phantom(size)
    theta = np.arange(180) * 180.0 / 180
    reference = iradon(radon(image, theta=theta), theta=theta, filter_name="ramp", output_size=size)
    ours = {}
    for name, geometry in (
        ("parallel", ParallelBeamCT(size, 1.0, views=180)),
        ("fan", FanBeamCT(size, 1.0)),
    ):
        sinogram = geometry.project(torch.from_numpy(image)[None])
        ours[name] = geometry.fbp(sinogram)[0].numpy()
    inner = (
        np.hypot(*np.meshgrid(*(2 * [np.arange(size) + 0.5 - size / 2]), indexing="ij"))
        < 0.4 * size
    )
    for name, recon in ours.items():
        assert np.abs(recon - reference)[inner].mean() < 0.01, name
        assert np.abs(recon - image)[inner].mean() < 0.01, name


@pytest.fixture(scope="module")
def clean_subject():
    """A metal-free subject at the benchmark's 1.5 mm pixels (planes of 1.5-3 mm need them)."""
    return simulate_subject(SynthConfig(subjects=2, size=256, slices=4, seed=3), 1, has_metal=False)


def test_muscles_show_against_fat_planes_in_ct(clean_subject) -> None:
    """Each labelled muscle averages +30..+70 HU in the clean CT; the 2-pixel ring just outside
    it (bone > 300 HU left out) averages at least 60 HU lower."""
    ct, labels = clean_subject.volumes["ct_clean"], clean_subject.volumes["labels"]
    ring_structure = ndimage.generate_binary_structure(2, 1)[None]
    tested = 0
    for label in (1, 2, 3, 4):
        inside = labels == label
        if inside.sum() < 100:  # a muscle's tail caught by one slice: too few voxels to judge
            continue
        tested += 1
        ring = ndimage.binary_dilation(inside, ring_structure, iterations=2) & ~inside & (ct <= 300)
        assert 30.0 <= ct[inside].mean() <= 70.0, label
        assert ct[ring].mean() <= ct[inside].mean() - 60.0, label
    assert tested >= 3


def test_fat_bright_in_t1(clean_subject) -> None:
    v = clean_subject.volumes
    body = ndimage.binary_fill_holes(clean_subject.tissue > 0)
    rim = body & ~ndimage.binary_erosion(body, iterations=3) & (clean_subject.tissue == FAT)
    muscle = (clean_subject.tissue == MUSCLE) & (v["labels"] > 0)
    assert v["mri_clean"][rim].mean() >= 2.5 * v["mri_clean"][muscle].mean()


def test_ct_and_mri_share_inner_structure(clean_subject) -> None:
    """Mean |LNCC| (sigma 5 px) of clean CT and MRI over the body; the former phantom, whose
    muscles were invisible, gave 0.37 at 128 px (docs/synthesis.md)."""
    from madn_core.similarity import lncc_map

    v = clean_subject.volumes
    ct = torch.from_numpy(np.clip(v["ct_clean"], -1000, 2000)[:, None])
    mri = torch.from_numpy(v["mri_clean"][:, None])
    body = torch.from_numpy(v["ct_clean"][:, None] > -500)
    assert float(lncc_map(ct, mri, 5.0).abs()[body].mean()) > 0.45


def test_artefact_strength_on_the_implanted_side(implanted) -> None:
    """Muscle sigma on the implanted half: at least twice the clean value, within the range
    reported for hip prostheses (docs/synthesis.md)."""
    v = implanted.volumes
    metal = v["metal_mask"].astype(bool)
    columns = np.arange(CONFIG.size)[None, None, :]
    half = columns >= CONFIG.size / 2 if implanted.side == "left" else columns < CONFIG.size / 2
    muscle = (v["labels"] > 0) & np.broadcast_to(half, metal.shape) & ~metal
    artefact, clean = v["ct"][muscle].std(), v["ct_clean"][muscle].std()
    assert 2.0 * clean <= artefact <= 400.0


def test_bilateral_prostheses_darken_the_band_between_them() -> None:
    config = SynthConfig(
        subjects=1, metal_fraction=1.0, bilateral_fraction=1.0, size=96, slices=6, seed=5
    )
    subject = simulate_subject(config, 0, has_metal=True)
    v = subject.volumes
    assert subject.side == "both"
    metal = v["metal_mask"].astype(bool)
    k = int(np.argmax(metal.sum(axis=(1, 2))))
    rows, cols = np.nonzero(metal[k])
    assert cols.min() < config.size / 2 < cols.max()  # metal on both sides
    centre_row = int(rows.mean())
    soft = np.isin(subject.tissue[k], [MUSCLE, FAT])
    band = np.zeros_like(soft)
    band[centre_row - 2 : centre_row + 3, int(0.35 * config.size) : int(0.65 * config.size)] = True
    band &= soft
    assert band.sum() > 10
    assert v["ct"][k][band].mean() < v["ct_clean"][k][band].mean() - 100.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bilateral_fraction": 1.5}, "--bilateral-fraction must be in \\[0, 1\\], got 1.5"),
        ({"size": 32, "fov_mm": 800.0}, "anatomy needs pixels of at most 12 mm \\(--size >= 68\\)"),
    ],
)
def test_bad_synth_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthConfig(**kwargs)
