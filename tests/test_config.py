import re

import pytest

from madn_core.config import ConfigError, MADNConfig


def test_round_trip_through_dict() -> None:
    config = MADNConfig.from_dict(
        {"variant": "madn", "loss": {"similarity": "nmi", "lambda_sim": 0.3}}
    )
    again = MADNConfig.from_dict(config.to_dict())
    assert again == config
    assert again.loss.similarity == "nmi" and again.loss.lambda_sim == 0.3


def test_defaults_follow_the_paper() -> None:
    config = MADNConfig()
    assert config.optim.lr == 1e-5
    assert (config.loss.lambda_adv, config.loss.lambda_rec, config.loss.lambda_cycle) == (
        1.0,
        20.0,
        20.0,
    )
    assert (config.loss.lambda_art, config.loss.lambda_sim, config.loss.sigma) == (20.0, 1.0, 5.0)
    assert config.loss.gan_mode == "lsgan"


@pytest.mark.parametrize(
    ("variant", "channels", "similarity", "full_cycle"),
    [
        ("adn-ct", ("ct",), False, False),
        ("adn-mr", ("mri",), False, False),
        ("multichannel", ("ct", "mri"), False, False),
        ("madn", ("ct", "mri"), True, True),
    ],
)
def test_variants(
    variant: str, channels: tuple[str, ...], similarity: bool, full_cycle: bool
) -> None:
    config = MADNConfig(variant=variant)
    assert config.channels == channels
    assert config.uses_similarity is similarity
    assert config.full_cycle is full_cycle


def test_full_cycle_can_be_overridden() -> None:
    assert MADNConfig(variant="multichannel").with_overrides({"loss.full_cycle": True}).full_cycle


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"loss": {"lambda_sim": -1.0}}, "loss.lambda_sim must be a finite number >= 0, got -1.0"),
        ({"loss": {"sigma": 0}}, "loss.sigma must be a finite number > 0"),
        ({"loss": {"similarity": "mi"}}, "loss.similarity must be one of lncc, cc, nmi, got 'mi'"),
        ({"variant": "unet"}, "variant must be one of"),
        ({"image_size": 30}, "image_size must be divisible by 2**network.num_down = 4"),
        ({"network": {"base_channels": 0}}, "network.base_channels must be an integer >= 1"),
        ({"optim": {"beta1": 1.0}}, "optim.beta1 must be < 1"),
        ({"train": {"device": "tpu"}}, "train.device must be one of auto, cpu, cuda"),
        ({"data": {"ct_prior": "bhc"}}, "data.ct_prior must be one of none, li, nmar, got 'bhc'"),
        ({"loss": {"lambda_simm": 1}}, "unknown config key 'loss.lambda_simm'"),
        ({"epochs": 3}, "unknown config key 'epochs'"),
    ],
)
def test_bad_values_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        MADNConfig.from_dict(data)


def test_dotted_overrides() -> None:
    config = MADNConfig().with_overrides({"loss.sigma": 2.5, "train.epochs": 3})
    assert config.loss.sigma == 2.5 and config.train.epochs == 3
    with pytest.raises(ConfigError, match=r"unknown config key 'loss\.nope'"):
        MADNConfig().with_overrides({"loss.nope": 1})
