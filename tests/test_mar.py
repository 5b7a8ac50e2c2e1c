"""Classical MAR baselines on a simulated implanted subject: they must lower the muscle noise."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from pipelines.baselines.mar import MARSettings, _interpolate_trace, li_mar, nmar
from pipelines.synth.generate import SynthConfig, simulate_subject
from pipelines.synth.tissues import MUSCLE

CONFIG = SynthConfig(subjects=1, size=96, slices=8, seed=3)


@pytest.fixture(scope="module")
def implanted():
    return simulate_subject(CONFIG, 0, has_metal=True)


@pytest.fixture(scope="module")
def muscle(implanted) -> np.ndarray:
    with_metal = implanted.volumes["metal_mask"].any(axis=(1, 2))
    eroded = ndimage.binary_erosion(implanted.tissue == MUSCLE, iterations=2)
    return eroded & with_metal[:, None, None]


@pytest.mark.parametrize("method", [li_mar, nmar])
def test_baselines_lower_muscle_std(implanted, muscle, method) -> None:
    v = implanted.volumes
    corrected = method(v["ct"], v["metal_mask"], CONFIG.voxel_mm[1])
    assert corrected.shape == v["ct"].shape and corrected.dtype == np.float32
    assert muscle.sum() > 100
    assert corrected[muscle].std() < 0.7 * v["ct"][muscle].std()
    error_before = np.abs(v["ct"] - v["ct_clean"])[muscle].mean()
    error_after = np.abs(corrected - v["ct_clean"])[muscle].mean()
    assert error_after < error_before
    metal = v["metal_mask"].astype(bool)
    assert np.array_equal(corrected[metal], v["ct"][metal])  # metal pasted back


def test_threshold_mask_and_single_slice(implanted) -> None:
    v = implanted.volumes
    z = int(np.argmax(v["metal_mask"].sum(axis=(1, 2))))
    by_mask = li_mar(v["ct"][z], v["metal_mask"][z], CONFIG.voxel_mm[1])
    by_threshold = li_mar(
        v["ct"][z], None, CONFIG.voxel_mm[1], MARSettings(metal_threshold_hu=2500)
    )
    assert by_mask.shape == v["ct"][z].shape
    assert np.isfinite(by_threshold).all()
    assert (
        np.abs(by_threshold - v["ct_clean"][z]).mean()
        < np.abs(v["ct"][z] - v["ct_clean"][z]).mean()
    )


def test_slices_without_metal_are_unchanged() -> None:
    ct = np.random.default_rng(0).normal(0, 10, (2, 32, 40)).astype(np.float32)
    assert np.array_equal(li_mar(ct, np.zeros(ct.shape, bool)), ct)
    assert np.array_equal(nmar(ct), ct)


def test_rectangular_slice_keeps_shape() -> None:
    ct = np.full((30, 44), 40.0, dtype=np.float32)
    ct[12:16, 20:24] = 8000.0
    out = nmar(ct, pixel_mm=1.5)
    assert out.shape == ct.shape and np.isfinite(out).all()


def test_interpolation_is_linear_between_trace_edges() -> None:
    row = np.array([[0.0, 1.0, 9.0, 9.0, 9.0, 5.0, 6.0]], dtype=np.float32)
    trace = np.array([[False, False, True, True, True, False, False]])
    out = _interpolate_trace(torch.tensor(row)[None], torch.tensor(trace)[None])[0, 0].numpy()
    np.testing.assert_allclose(out, [0, 1, 2, 3, 4, 5, 6], atol=1e-6)


@pytest.mark.parametrize(
    ("ct", "mask", "message"),
    [
        (np.zeros(5), None, "slice"),
        (np.full((4, 4), np.nan), None, "non-finite"),
        (np.zeros((4, 4)), np.zeros((5, 5)), "does not match"),
    ],
)
def test_bad_input(ct, mask, message) -> None:
    with pytest.raises(ValueError, match=message):
        li_mar(ct, mask)
