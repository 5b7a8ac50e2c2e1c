"""The correction path (`madn_core.correction`): metal fill before the network, the implant's
pixels restored after it, the trainer filling its corrupted batches, and validation scoring
every pixel but the metal (as `madn evaluate` does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from madn_core.config import ConfigError
from madn_core.correction import (
    FILL_HU,
    channel_shrinks,
    fill_metal,
    find_metal,
    shrink_change,
    smooth_change,
)
from madn_core.model import MADN
from madn_core.trainer import Trainer
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.training.validation import Validator

WINDOW = (-1000.0, 2000.0)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test here builds untrained networks and random images: seed them, so that a
    threshold on how much an untrained network changes is not left to chance."""
    torch.manual_seed(0)


def _images_with_metal() -> torch.Tensor:
    """(2, 2, 32, 32) CT+MRI in [-1, 1]: slice 0 has saturated metal at rows/cols 10-13."""
    images = torch.rand(2, 2, 32, 32) * 0.4 - 0.5
    images[0, 0, 10:14, 10:14] = 1.0
    images[0, 1, 10:14, 10:14] = -1.0  # the MRI signal void
    return images


def test_fill_sets_metal_to_water_in_the_ct_channel_only() -> None:
    config = tiny_config("multichannel").with_overrides(
        {"network.metal_fill": True, "data.ct_window_hu": WINDOW}
    )
    images = _images_with_metal()
    metal = find_metal(config, images)
    assert metal[0, 0, 10:14, 10:14].all() and int(metal.sum()) == 16
    filled = fill_metal(config, images, metal)
    water = 2.0 * (FILL_HU - WINDOW[0]) / (WINDOW[1] - WINDOW[0]) - 1.0
    torch.testing.assert_close(filled[0, 0, 10:14, 10:14], torch.full((4, 4), water))
    torch.testing.assert_close(filled[:, 1], images[:, 1])  # MRI as it was
    torch.testing.assert_close(filled[1], images[1])  # no metal, nothing filled
    plain = tiny_config("multichannel")
    assert fill_metal(plain, images, metal) is images  # off by default (ADN)


def test_filled_model_keeps_the_implant_and_ignores_its_pixels() -> None:
    config = tiny_config("multichannel").with_overrides(
        {"network.metal_fill": True, "data.ct_window_hu": WINDOW}
    )
    model = MADN(config).eval()
    images = _images_with_metal()
    out = model.correct(images)
    torch.testing.assert_close(out[0, :, 10:14, 10:14], images[0, :, 10:14, 10:14])
    other = images.clone()
    other[0, 0, 10:14, 10:14] = 0.999  # different metal values: the same output around it
    around = model.correct(other)
    torch.testing.assert_close(around[0, :, :, 16:], out[0, :, :, 16:])


def test_shrunk_change_drops_small_changes_and_shortens_large_ones() -> None:
    image = torch.zeros(1, 2, 2, 2)
    output = torch.tensor([[[[0.05, -0.1], [0.3, -0.5]], [[0.0, 0.21], [-0.19, 1.0]]]])
    expected = torch.tensor([[[[0.0, 0.0], [0.1, -0.3]], [[0.0, 0.01], [0.0, 0.8]]]])
    torch.testing.assert_close(shrink_change(image, output, 0.2), expected)
    config = tiny_config("multichannel").with_overrides(
        {"network.correction_shrink": 0.1, "data.ct_window_hu": WINDOW}
    )
    model = MADN(config).eval()  # wired into MADN.correct, per channel
    plain = MADN(tiny_config("multichannel")).eval()
    plain.load_state_dict(model.state_dict())
    images = _images_with_metal()
    torch.testing.assert_close(
        model.correct(images), shrink_change(images, plain.correct(images), 0.2).clamp(-1, 1)
    )
    unchanged = (model.correct(images) == images).float().mean()
    small = ((plain.correct(images) - images).abs() <= 0.2).float().mean()
    assert float(small) > 0.1 and float(unchanged) == float(small)  # small changes: none made
    with pytest.raises(ConfigError, match=r"network\.correction_shrink"):
        tiny_config("adn-ct", **{"network.correction_shrink": 1.5})


def test_mri_shrink_sets_the_mri_channels_own_threshold() -> None:
    """network.mri_shrink 0: the CT channel shrunk at correction_shrink, the MRI channel as the
    decoder made it; None (the default) shrinks both alike."""
    shrunk = {"network.correction_shrink": 0.1, "data.ct_window_hu": WINDOW}
    config = tiny_config("multichannel").with_overrides({**shrunk, "network.mri_shrink": 0.0})
    assert channel_shrinks(config) == [0.1, 0.0]
    assert channel_shrinks(tiny_config("multichannel").with_overrides(shrunk)) == [0.1, 0.1]
    assert channel_shrinks(tiny_config("adn-mr").with_overrides(shrunk)) == [0.1]
    model = MADN(config).eval()
    plain = MADN(tiny_config("multichannel")).eval()
    plain.load_state_dict(model.state_dict())
    images = _images_with_metal()
    out, raw = model.correct(images), plain.correct(images)
    torch.testing.assert_close(out[:, 1], raw[:, 1])  # MRI: no shrink
    expected_ct = shrink_change(images[:, :1], raw[:, :1], 0.2).clamp(-1, 1)
    torch.testing.assert_close(out[:, :1], expected_ct)
    assert not torch.equal(out[:, :1], raw[:, :1])
    with pytest.raises(ConfigError, match=r"network\.mri_shrink"):
        tiny_config("madn", **{"network.mri_shrink": -0.1})


def test_shrink_rules_drop_small_changes_and_differ_on_large_ones() -> None:
    """At t = 0.2: a change of 0.1 is dropped by every rule; 0.5 becomes 0.3 (soft), 0.42
    (garrote: 0.5 - 0.04 / 0.5) or stays 0.5 (hard); the sign is kept."""
    image = torch.full((1, 1, 1, 4), 0.1)
    output = image + torch.tensor([0.1, 0.5, -0.5, -0.19])
    expected = {
        "soft": [0.0, 0.3, -0.3, 0.0],
        "garrote": [0.0, 0.42, -0.42, 0.0],
        "hard": [0.0, 0.5, -0.5, 0.0],
    }
    for rule, change in expected.items():
        got = shrink_change(image, output, 0.2, rule) - image
        torch.testing.assert_close(got.flatten(), torch.tensor(change), msg=rule)
    shrunk = {"network.correction_shrink": 0.1, "data.ct_window_hu": WINDOW}
    config = tiny_config("adn-ct").with_overrides({**shrunk, "network.shrink_rule": "garrote"})
    model = MADN(config).eval()  # wired into MADN.correct
    plain = MADN(tiny_config("adn-ct")).eval()
    plain.load_state_dict(model.state_dict())
    images = _images_with_metal()[:, :1]
    expected_out = shrink_change(images, plain.correct(images), 0.2, "garrote").clamp(-1, 1)
    torch.testing.assert_close(model.correct(images), expected_out)
    with pytest.raises(ConfigError, match=r"network\.shrink_rule.*'firm'"):
        tiny_config("adn-ct", **{"network.shrink_rule": "firm"})


def test_smoothed_change_keeps_the_input_noise_and_the_broad_correction() -> None:
    config = tiny_config("adn-ct").with_overrides(
        {"network.correction_smooth_mm": 3.0, "data.spacing_mm": 1.5}
    )
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, 64, 64, generator=g) - 0.5
    noise = 0.1 * torch.randn(image.shape, generator=g)
    shading = torch.linspace(-0.2, 0.2, 64).view(1, 1, 1, 64).expand_as(image)
    denoised_and_shaded = image - noise + shading  # what a denoising network would output
    out = smooth_change(config, image, denoised_and_shaded)
    inner = (..., slice(8, -8), slice(8, -8))  # away from the border
    left = (out - image - shading)[inner]  # the shading is kept, the noise mostly put back
    assert left.std() < 0.2 * noise[inner].std() and abs(float(left.mean())) < 0.01
    model = MADN(config).eval()  # wired into MADN.correct
    plain = MADN(tiny_config("adn-ct").with_overrides({"data.spacing_mm": 1.5})).eval()
    plain.load_state_dict(model.state_dict())
    x = image.clamp(-1, 1).expand(2, 1, 64, 64).contiguous()
    smoothed_change = model.correct(x) - x
    raw_change = plain.correct(x) - x
    torch.testing.assert_close(
        smoothed_change, smooth_change(config, x, plain.correct(x)) - x, atol=1e-5, rtol=0
    )
    high = smoothed_change - smooth_change(config, torch.zeros_like(x), smoothed_change)
    assert high.abs().mean() < 0.2 * (raw_change - smoothed_change).abs().mean()
    with pytest.raises(ConfigError, match=r"network\.correction_smooth_mm"):
        tiny_config("adn-ct", **{"network.correction_smooth_mm": -1.0})
    unknown = tiny_config("adn-ct", **{"network.correction_smooth_mm": 1.0})
    with pytest.raises(ValueError, match=r"correction_smooth_mm needs data\.spacing_mm"):
        MADN(unknown).eval().correct(x)


def test_trainer_never_sees_the_metal_values() -> None:
    config = tiny_config("adn-ct").with_overrides(
        {"network.metal_fill": True, "data.ct_window_hu": WINDOW}
    )
    corrupted = _images_with_metal()[:, :1]
    clean = torch.rand(2, 1, 32, 32) * 0.4 - 0.5
    other = corrupted.clone()
    other[0, 0, 10:14, 10:14] = 0.9995  # still metal, other values
    first = Trainer(config).train_step(corrupted, clean)
    second = Trainer(config).train_step(other, clean)
    assert first == second  # same seed, and the filled batches are identical
    plain = config.with_overrides({"network.metal_fill": False})
    assert Trainer(plain).train_step(corrupted, clean) != Trainer(plain).train_step(other, clean)


def test_validation_scores_every_pixel_but_the_metal(dataset_path) -> None:
    dataset = SliceDataset(dataset_path)
    validator = Validator(dataset, channels_for_variant("adn-ct"))
    assert validator.metal.any()
    truth = validator.data["ct_clean"]
    noisy = truth + np.random.default_rng(0).normal(0, 0.02, truth.shape).astype(np.float32)
    wrong_metal = noisy.copy()
    wrong_metal[validator.metal] = -1.0  # anything inside the implant
    a = validator._metrics({"ct": noisy, "mri": validator.data["mri"]})
    b = validator._metrics({"ct": wrong_metal, "mri": validator.data["mri"]})
    assert abs(a["psnr_ct"] - b["psnr_ct"]) < 1e-6
    assert abs(a["psnr_ct_near"] - b["psnr_ct_near"]) < 1e-6
    assert 30.0 < a["psnr_ct"] < 45.0  # 0.02 noise on a data range of 2: about 40 dB


def test_the_sample_grid_reuses_the_epochs_validation_outputs(dataset_path) -> None:
    dataset = SliceDataset(dataset_path)
    validator = Validator(dataset, channels_for_variant("adn-ct"))
    model = MADN(tiny_config("adn-ct").with_overrides({"image_size": dataset.size})).eval()
    fresh = validator.sample_grid_images(model, count=2)  # nothing validated yet: runs the model
    validator(model, epoch=3)
    reused = validator.sample_grid_images(model, count=2, epoch=3)
    for column in ("input", "corrected", "ground truth"):
        for a, b in zip(fresh[column], reused[column], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
    with torch.no_grad():
        for parameter in model.decoder_clean.parameters():  # another model at epoch 4
            parameter.add_(0.1 * torch.randn_like(parameter))
    changed = validator.sample_grid_images(model, count=2, epoch=4)
    assert not np.allclose(changed["corrected"][0], reused["corrected"][0])
