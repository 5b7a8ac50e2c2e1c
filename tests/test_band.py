"""The implant band (`network.correction_band_mm`): exact distances, the blend weights, and a
model whose correction stays near the metal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config
from scipy import ndimage

from madn_core.band import band_weight, distance_to_mask, metal_from_ct
from madn_core.model import MADN


def test_distance_matches_scipy_euclidean_distance_transform() -> None:
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 48), bool)
    mask[10:14, 20:26] = True
    mask[rng.integers(0, 40, 5), rng.integers(0, 48, 5)] = True
    expected = ndimage.distance_transform_edt(~mask) * 1.5
    got = distance_to_mask(torch.from_numpy(mask), spacing_mm=1.5).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert torch.isinf(distance_to_mask(torch.zeros(4, 4, dtype=torch.bool), 1.0)).all()


def test_weight_is_one_near_metal_and_zero_beyond_twice_the_band() -> None:
    metal = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    metal[0, 0, 30:34, 30:34] = True
    weight = band_weight(metal, band_mm=10.0, spacing_mm=1.0)
    distance = ndimage.distance_transform_edt(~metal[0, 0].numpy())
    w = weight[0, 0].numpy()
    assert (w[distance <= 10] == 1).all() and (w[distance >= 20] == 0).all()
    between = (distance > 10) & (distance < 20)
    np.testing.assert_allclose(w[between], (20 - distance[between]) / 10, atol=1e-5)
    assert (weight[1] == 0).all()  # a slice without metal is left alone


def test_banded_model_corrects_only_near_the_metal() -> None:
    config = tiny_config("adn-ct").with_overrides(
        {
            "network.correction_band_mm": 6.0,
            "data.spacing_mm": 1.0,
            "data.ct_window_hu": (-1000.0, 3000.0),
        }
    )
    model = MADN(config).eval()
    images = torch.rand(2, 1, 32, 32) * 0.5 - 0.5
    images[0, 0, 4:6, 4:6] = 1.0  # metal (3000 HU) in the corner of slice 0; slice 1 has none
    assert metal_from_ct(images, config.data.ct_window_hu)[0, 0, 4:6, 4:6].all()
    out = model.correct(images)
    plain = MADN(tiny_config("adn-ct")).eval()
    plain.load_state_dict(model.state_dict())
    full = plain.correct(images)
    torch.testing.assert_close(out[1], images[1])  # no metal: untouched
    torch.testing.assert_close(out[0, 0, 20:, 20:], images[0, 0, 20:, 20:])  # > 12 mm away
    torch.testing.assert_close(out[0, 0, 3:7, 3:7], full[0, 0, 3:7, 3:7])  # within the band


def test_band_needs_the_pixel_spacing() -> None:
    config = tiny_config("adn-ct").with_overrides({"network.correction_band_mm": 6.0})
    images = torch.ones(1, 1, 32, 32)
    with pytest.raises(ValueError, match=r"needs data\.spacing_mm"):
        MADN(config).correct(images)


def test_mri_channel_has_its_own_narrower_band() -> None:
    """network.mri_band_mm: the MRI channel returns to its input beyond twice its own band while
    the CT channel is still corrected there."""
    settings = {"data.spacing_mm": 1.0, "data.ct_window_hu": (-1000.0, 3000.0)}
    wide = {**settings, "network.correction_band_mm": 8.0}
    config = tiny_config("multichannel").with_overrides({**wide, "network.mri_band_mm": 3.0})
    model = MADN(config).eval()
    images = torch.rand(1, 2, 32, 32) * 0.5 - 0.5
    images[0, 0, 4:6, 4:6] = 1.0  # metal in the CT channel's corner
    out = model.correct(images)
    same = MADN(tiny_config("multichannel").with_overrides(wide)).eval()
    same.load_state_dict(model.state_dict())
    reference = same.correct(images)
    beyond_mri = (slice(14, 16), slice(4, 6))  # 9-10 mm from the metal: past 2 x 3 mm, < 8 mm
    torch.testing.assert_close(out[0, 1][beyond_mri], images[0, 1][beyond_mri])
    torch.testing.assert_close(out[0, 0], reference[0, 0])  # CT as with one band
    assert not torch.allclose(out[0, 0][beyond_mri], images[0, 0][beyond_mri])
    torch.testing.assert_close(out[0, 1, 3:7, 3:7], reference[0, 1, 3:7, 3:7])  # near: the net
