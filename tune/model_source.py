"""Load a model from a local checkpoint or an MLflow model URI (`models:/NAME@alias`,
`models:/NAME/VERSION`, `runs:/RUN_ID/model`), for `madn correct` and `madn evaluate`."""

from __future__ import annotations

from pathlib import Path

import torch

from madn_core.checkpoint import load_model
from madn_core.model import MADN

MLFLOW_PREFIXES = ("models:/", "runs:/", "mlflow-artifacts:/")


def is_mlflow_uri(source: str) -> bool:
    return source.startswith(MLFLOW_PREFIXES)


def load_model_source(
    source: str, device: torch.device | str = "cpu", tracking_uri: str | None = None
) -> MADN:
    """The MADN at `source`: a checkpoint path or an MLflow model URI (resolved against
    `tracking_uri`, else MLFLOW_TRACKING_URI, else the embedded sqlite default)."""
    if is_mlflow_uri(source):
        from tune.registry import load_registered_model

        return load_registered_model(source, tracking_uri=tracking_uri, device=device)
    if not Path(source).is_file():
        raise FileNotFoundError(f"model {source} does not exist (expected a checkpoint file)")
    return load_model(source, map_location=device)
