"""Checkpoint files: atomic writes, safe loads (`weights_only=True`) and clear errors.

A checkpoint is a dict of tensors and plain Python values: "format", "config" (MADNConfig as a
dict), "model" (state dict), optimiser states, "step", "epoch", RNG states and "history".
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from madn_core.config import ConfigError, MADNConfig
from madn_core.errors import CheckpointError as CheckpointError  # re-exported; torch-free home
from madn_core.model import MADN
from madn_core.umask import apply_umask

CHECKPOINT_FORMAT = 1


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `payload` to `path` through a temporary file in the same folder, then rename, so a
    crash never leaves a half-written checkpoint in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        apply_umask(temp_name)
        with os.fdopen(handle, "wb") as stream:
            torch.save({"format": CHECKPOINT_FORMAT, **payload}, stream)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; raise CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{path}: not a readable madn checkpoint ({type(error).__name__})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a madn checkpoint of format {CHECKPOINT_FORMAT}")
    for key in ("config", "model"):
        if key not in payload:
            raise CheckpointError(f"{path}: checkpoint has no {key!r} entry")
    return payload


def config_from_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> MADNConfig:
    try:
        return MADNConfig.from_dict(payload["config"])
    except ConfigError as error:
        raise CheckpointError(f"{path}: invalid config in checkpoint ({error})") from error


def load_model(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expected_variant: str | None = None,
) -> MADN:
    """Rebuild the MADN model saved in a checkpoint, in eval mode: the EMA weights when the
    checkpoint has them (what validation scored), else the trained weights.

    expected_variant: if given, a checkpoint of another variant raises CheckpointError.
    """
    payload = load_checkpoint(path, map_location)
    config = config_from_checkpoint(payload, path)
    if expected_variant is not None and config.variant != expected_variant:
        raise CheckpointError(
            f"{path}: checkpoint is of variant {config.variant!r}, expected {expected_variant!r}"
        )
    model = MADN(config)
    try:
        ema = payload.get("ema")
        model.load_state_dict(ema["model"] if isinstance(ema, dict) else payload["model"])
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the {config.variant} model ({error})"
        ) from error
    return model.to(map_location).eval()
