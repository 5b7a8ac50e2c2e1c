"""`madn train` settings (flag names, as in a --config file) and the model config they build;
shared by `madn train` and each sweep trial."""

from __future__ import annotations

from typing import Any

from madn_core.config import MADNConfig

# flag name (underscored, as in a --config file) -> dotted MADNConfig key
CONFIG_KEYS = {
    "similarity": "loss.similarity",
    "lambda_sim": "loss.lambda_sim",
    "sigma": "loss.sigma",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "train.device",
    "amp": "train.amp",
    "lr": "optim.lr",
    "base_channels": "network.base_channels",
    "num_res": "network.num_res",
    "patch": "train.patch",
    "ema_decay": "train.ema_decay",
}


def build_config(settings: dict[str, Any], image_size: int) -> MADNConfig:
    """A MADNConfig from settings keyed like the flags (`model:` takes any other field)."""
    base = dict(settings.get("model") or {})
    base.setdefault("variant", settings.get("variant", "madn"))
    base["image_size"] = image_size
    base.setdefault("train", {}).setdefault("epochs", 1)
    config = MADNConfig.from_dict(base)
    overrides = {CONFIG_KEYS[k]: v for k, v in settings.items() if k in CONFIG_KEYS}
    if "base_channels" in settings:
        overrides["network.discriminator_channels"] = settings["base_channels"]
    return config.with_overrides(overrides) if overrides else config
