"""The MRI void-inpainting term (`loss.lambda_void`, `madn_core.voids`)."""

import math

import pytest
import torch
from conftest import tiny_config
from streaks import streak_batches

from madn_core.config import ConfigError, MADNConfig
from madn_core.trainer import Trainer
from madn_core.voids import (
    FLOOR_STD,
    NO_SIGNAL,
    blank_channel,
    masked_l1,
    random_discs,
    random_soft_voids,
    random_voids,
)


def test_discs_are_one_round_blob_each_within_the_radius_bounds() -> None:
    torch.manual_seed(0)
    masks = random_discs(64, 48, 40, 8.0, "cpu")
    assert masks.shape == (64, 1, 48, 40) and masks.dtype == torch.bool
    areas = masks.sum(dim=(1, 2, 3)).float()
    assert bool((areas >= math.pi * 2.0**2 * 0.6).all()), areas.min()
    assert bool((areas <= math.pi * 8.0**2 * 1.2).all()), areas.max()
    assert float(areas.std()) > 10.0  # the radius is drawn, not fixed
    rows = torch.arange(48.0)[None, :, None]
    centre_rows = (masks[:, 0] * rows).sum(dim=(1, 2)) / areas
    assert bool(((centre_rows > 0.2 * 47) & (centre_rows < 0.8 * 47)).all())


def test_discs_follow_the_global_seed() -> None:
    torch.manual_seed(5)
    first = random_discs(4, 32, 32, 6.0, "cpu")
    torch.manual_seed(5)
    assert torch.equal(first, random_discs(4, 32, 32, 6.0, "cpu"))
    with pytest.raises(ValueError, match="max_radius_px must be > 0, got 0"):
        random_discs(4, 32, 32, 0.0, "cpu")


def test_blank_channel_touches_only_that_channel_inside_the_mask() -> None:
    images = torch.rand(3, 2, 16, 16)
    masks = torch.zeros(3, 1, 16, 16, dtype=torch.bool)
    masks[:, :, 4:8, 4:8] = True
    voided = blank_channel(images, 1, masks)
    assert torch.equal(voided[:, 0], images[:, 0])
    assert bool((voided[:, 1:][masks] == NO_SIGNAL).all())
    assert torch.equal(voided[:, 1:][~masks], images[:, 1:][~masks])
    assert float(masked_l1(images[:, 1:], voided[:, 1:], masks)) > 0.5
    assert float(masked_l1(images[:, 1:], voided[:, 1:], ~masks)) == 0.0


def test_soft_voids_fade_from_the_rim_to_a_noisy_core() -> None:
    """A soft void keeps the signal outside its disc, has a fully dark core and a smooth rim in
    between, and leaves a noise floor a few FLOOR_STD above NO_SIGNAL, never the exact -1 a
    network could learn as its cue."""
    torch.manual_seed(0)
    signal = random_soft_voids(32, 48, 48, 10.0, "cpu")
    assert signal.shape == (32, 1, 48, 48) and float(signal.min()) == 0.0
    assert float(signal.max()) == 1.0
    dark = (signal == 0).sum(dim=(1, 2, 3))
    partial = ((signal > 0) & (signal < 1)).sum(dim=(1, 2, 3))
    assert bool((dark > 0).all()) and bool((partial >= dark).all())  # a core, and a wider rim
    images = torch.full((32, 2, 48, 48), 0.5)
    torch.manual_seed(1)
    voided, mask = random_voids(images, 1, 10.0, "soft")
    assert torch.equal(voided[:, 0], images[:, 0])
    assert torch.equal(voided[:, 1:][~mask], images[:, 1:][~mask])
    core = voided[:, 1:][(random_voids_signal(1) == 0)]
    assert bool((core > NO_SIGNAL).all()) and float(core.std()) > 0.2 * FLOOR_STD
    assert abs(float(core.mean()) - NO_SIGNAL - 1.2533 * FLOOR_STD) < 0.3 * FLOOR_STD
    torch.manual_seed(1)
    again, _ = random_voids(images, 1, 10.0, "soft")
    assert torch.equal(voided, again)
    with pytest.raises(ValueError, match="void shape must be one of"):
        random_voids(images, 1, 10.0, "square")


def random_voids_signal(seed: int) -> torch.Tensor:
    """The signal fraction `random_voids(.., "soft")` drew after torch.manual_seed(seed), for
    32 images of 48 x 48 px and 10 px voids."""
    torch.manual_seed(seed)
    return random_soft_voids(32, 48, 48, 10.0, "cpu")


@pytest.mark.parametrize(
    ("variant", "has_term"), [("madn", True), ("adn-mr", True), ("adn-ct", False)]
)
def test_void_term_exists_with_an_mri_channel_and_is_weighted_into_the_total(
    variant: str, has_term: bool
) -> None:
    channels = {"madn": (0, 1), "adn-mr": (1,), "adn-ct": (0,)}[variant]
    corrupted, clean = streak_batches(4, 32, 4, seed=1, channels=channels)[0]
    model = Trainer(tiny_config(variant, **{"loss.lambda_void": 5.0})).model
    torch.manual_seed(0)
    terms, _ = model.generator_loss(corrupted, clean)
    assert ("void" in terms) == has_term
    if not has_term:
        return
    model.config = model.config.with_overrides({"loss.lambda_void": 0.0})
    torch.manual_seed(0)
    terms_off, _ = model.generator_loss(corrupted, clean)
    assert "void" not in terms_off
    expected = terms_off["g_total"] + 5.0 * terms["void"]
    assert torch.allclose(terms["g_total"], expected, rtol=1e-4)


def test_training_with_the_void_term_teaches_the_correction_path_to_fill_mri_voids() -> None:
    """After the same short training, the model trained with the term restores a blanked MRI
    disc of a clean image better than the one trained without it."""
    batches = streak_batches(24, 32, 4, seed=2)
    _, clean = streak_batches(8, 32, 8, seed=9)[0]
    torch.manual_seed(1)
    masks = random_discs(len(clean), 32, 32, 8.0, "cpu")
    voided = blank_channel(clean, 1, masks)
    base = tiny_config("multichannel", **{"train.seed": 3, "optim.lr": 1e-3, "train.epochs": 8})
    errors = {}
    for name, weight in (("off", 0.0), ("on", 5.0)):
        trainer = Trainer(base.with_overrides({"loss.lambda_void": weight}))
        trainer.fit(batches)
        net = trainer.inference_model.eval()
        with torch.no_grad():
            out = net.decode_clean(net.encoder_corrupt(voided), voided)
        errors[name] = float(masked_l1(out[:, 1:], clean[:, 1:], masks))
    assert errors["on"] < 0.8 * errors["off"], errors


def test_void_settings_are_checked_with_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"loss\.void_radius_px"):
        MADNConfig.from_dict({"variant": "madn", "loss": {"void_radius_px": 0}})
    with pytest.raises(ConfigError, match=r"loss\.lambda_void"):
        MADNConfig.from_dict({"variant": "madn", "loss": {"lambda_void": -1}})
    with pytest.raises(ConfigError, match=r"loss\.void_shape"):
        MADNConfig.from_dict({"variant": "madn", "loss": {"void_shape": "square"}})


@pytest.mark.parametrize(("variant", "channels"), [("madn", ["ct"]), ("adn-mr", ["ct"])])
def test_art_channels_leave_the_other_channels_out_of_the_artefact_consistency_term(
    variant: str, channels: list[str]
) -> None:
    """With `loss.art_channels` ["ct"], the term compares the CT only (adn-mr: no term left),
    and it is the full term's CT part: the MRI's difference no longer counts."""
    data_channels = {"madn": (0, 1), "adn-mr": (1,)}[variant]
    corrupted, clean = streak_batches(4, 32, 4, seed=1, channels=data_channels)[0]
    model = Trainer(tiny_config(variant)).model
    with torch.no_grad():
        out = model(corrupted, clean)
    full = model.artefact_consistency(corrupted, clean, out)
    model.config = model.config.with_overrides({"loss.art_channels": channels})
    partial = model.artefact_consistency(corrupted, clean, out)
    if variant == "adn-mr":
        assert float(partial) == 0.0 and float(full) > 0.0
        return
    removed = corrupted[:, :1] - out["corrected"][:, :1]
    added = out["clean_corrupted"][:, :1] - clean[:, :1]
    assert torch.allclose(partial, (removed - added).abs().mean())
    assert not torch.allclose(partial, full)
    with pytest.raises(ConfigError, match=r"loss\.art_channels"):
        MADNConfig.from_dict({"variant": "madn", "loss": {"art_channels": ["pet"]}})
