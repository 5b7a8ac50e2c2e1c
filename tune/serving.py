"""The registered model as a servable MLflow pyfunc, in scanner units.

`madn promote` logs every version with `log_servable_model`; `madn serve` (or `mlflow models
serve` from the activated venv) serves it over HTTP.

predict(model_input, params):
- model_input: float32 (N, C, H, W), N >= 1 slices of any height and width, in scanner units:
  CT in HU (channel 0), the registered MRI in its own units (channel 1 of a two-channel model;
  channel 0 of adn-mr);
- params: `spacing_mm` (float, the input's in-plane pixel spacing; default the model's own)
  and `all_slices` (bool: also run slices without metal, which are otherwise returned as they
  came; default false);
- returns float32 (N, C, H, W) in the same units on the input's grid.

Inside, `pipelines.inference.correct.correct_images` does what `madn correct` does to a volume:
resample to the model's spacing, window (CT) or robust-percentile scaling (MRI, over the N
slices), the fully convolutional network on padded whole slices with its metal fill and implant
band, and the way back. The model's weights travel as a madn checkpoint artifact; `madn_core`,
`pipelines` and `tune` as code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import torch

from pipelines.data.dataset import channels_for_variant

CHECKPOINT_ARTIFACT = "checkpoint"


def slices_as_images(slices: np.ndarray, channels: tuple[str, ...], spacing_mm: float) -> dict:
    """(N, C, H, W) scanner-unit slices -> {modality: SimpleITK image (W, H, N)} with in-plane
    spacing `spacing_mm` and 1 mm between slices (slices are corrected one by one)."""
    import SimpleITK as sitk

    if slices.ndim != 4 or slices.shape[1] != len(channels):
        raise ValueError(
            f"model input has shape {tuple(slices.shape)}, expected (N, {len(channels)}, H, W) "
            f"with channels {'+'.join(channels).upper()}"
        )
    if min(slices.shape[2:]) < 8:
        raise ValueError(f"slices of {slices.shape[2]}x{slices.shape[3]} px: need >= 8 px a side")
    if not np.isfinite(slices).all():
        raise ValueError("model input holds NaN or infinite values")
    images = {}
    for c, name in enumerate(channels):
        image = sitk.GetImageFromArray(np.ascontiguousarray(slices[:, c], dtype=np.float32))
        image.SetSpacing((spacing_mm, spacing_mm, 1.0))
        images[name] = image
    return images


def correct_scanner_slices(
    net: Any, slices: np.ndarray, spacing_mm: float | None = None, all_slices: bool = False
) -> np.ndarray:
    """(N, C, H, W) float32 scanner-unit slices -> corrected, same shape and units (module
    doc). `net`: a MADN or Corrector; `spacing_mm` defaults to the model's own spacing."""
    from pipelines.inference.correct import correct_images

    config = net.config
    channels = channels_for_variant(config.variant)
    spacing = float(spacing_mm) if spacing_mm else float(config.data.spacing_mm) or 1.0
    if not np.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"spacing_mm must be a positive number of millimetres, got {spacing_mm}")
    images = slices_as_images(np.asarray(slices, np.float32), channels, spacing)
    arrays, _, _ = correct_images(net, images, progress=False, all_slices=all_slices)
    return np.stack([arrays[c] for c in channels], axis=1).astype(np.float32)


class ScannerUnitCorrector(mlflow.pyfunc.PythonModel):
    """The pyfunc of the module doc: loads the checkpoint artifact once per process."""

    def load_context(self, context: Any) -> None:
        from madn_core.checkpoint import load_model
        from madn_core.corrector import Corrector

        self.net = Corrector(load_model(context.artifacts[CHECKPOINT_ARTIFACT])).eval()

    # model_input has no type hint on purpose: MLflow would build a schema from it, where the
    # logged signature (a (-1, C, -1, -1) float32 tensor) is the one to enforce.
    def predict(self, context: Any, model_input, params: dict | None = None) -> np.ndarray:
        """(N, C, H, W) scanner-unit slices -> corrected, same shape and units (module doc)."""
        params = params or {}
        with torch.no_grad():
            return correct_scanner_slices(
                self.net,
                np.asarray(model_input, np.float32),
                params.get("spacing_mm"),
                bool(params.get("all_slices", False)),
            )


def save_model_checkpoint(model: torch.nn.Module, path: Path) -> Path:
    """A weights-only madn checkpoint of `model` (config + weights), readable by load_model."""
    from madn_core.checkpoint import save_checkpoint

    return save_checkpoint({"config": model.config.to_dict(), "model": model.state_dict()}, path)


def model_signature(channels: int, spacing_mm: float) -> Any:
    """Input and output float32 (-1, channels, -1, -1): any slice count, height and width;
    params spacing_mm (default the model's) and all_slices."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

    tensor = Schema([TensorSpec(np.dtype(np.float32), (-1, channels, -1, -1))])
    params = ParamSchema(
        [
            ParamSpec("spacing_mm", "double", float(spacing_mm)),
            ParamSpec("all_slices", "boolean", False),
        ]
    )
    return ModelSignature(inputs=tensor, outputs=tensor, params=params)


def log_servable_model(
    model: torch.nn.Module, example: np.ndarray, folder: Path, metadata: dict[str, Any]
) -> Any:
    """Log `model` (a MADN) as the pyfunc of the module doc under the active run's artifact
    path "model", with `example` (1, C, H, W) scanner-unit slice(s) as input example; the
    ModelInfo. `folder`: a scratch folder for the checkpoint."""
    import SimpleITK

    import madn_core
    import pipelines
    import tune

    checkpoint = save_model_checkpoint(model, folder / "model.ckpt")
    spacing = float(model.config.data.spacing_mm) or 1.0
    packages = [madn_core, pipelines, tune]
    versions = {name: __import__(name).__version__ for name in ("numpy", "pandas", "pyarrow")}
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=ScannerUnitCorrector(),
        artifacts={CHECKPOINT_ARTIFACT: str(checkpoint)},
        signature=model_signature(example.shape[1], spacing),
        input_example=(example.astype(np.float32), {"spacing_mm": spacing}),
        metadata={"madn": metadata},
        code_paths=[str(Path(package.__file__).parent) for package in packages],
        pip_requirements=[
            f"torch>={torch.__version__.split('+')[0]}",
            f"SimpleITK=={SimpleITK.Version.VersionString()}",
            "scipy",
            "tqdm",
            *(f"{name}=={version}" for name, version in versions.items()),
        ],
    )
