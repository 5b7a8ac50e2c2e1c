"""Shared fixtures. Tests use tiny sizes (32-64 px, base width 8) to stay fast on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch

from madn_core.config import MADNConfig


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


def tiny_config(variant: str = "madn", **overrides: object) -> MADNConfig:
    """A 32x32, base-width-8 model with one residual block: quick to build and train."""
    config = MADNConfig.from_dict(
        {
            "variant": variant,
            "image_size": 32,
            "network": {"base_channels": 8, "num_res": 1, "discriminator_channels": 8},
            "optim": {"lr": 2e-4},
            "train": {"epochs": 2, "batch_size": 4, "seed": 0, "device": "cpu"},
        }
    )
    return config.with_overrides(overrides) if overrides else config
