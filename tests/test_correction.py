"""The correction path (`madn_core.correction`): metal fill before the network, the implant's
pixels restored after it, the trainer filling its corrupted batches, and validation scoring
every pixel but the metal (as `madn evaluate` does)."""

from __future__ import annotations

import numpy as np
import torch
from conftest import tiny_config

from madn_core.correction import FILL_HU, fill_metal, find_metal
from madn_core.model import MADN
from madn_core.trainer import Trainer
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.training.validation import Validator

WINDOW = (-1000.0, 2000.0)


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
