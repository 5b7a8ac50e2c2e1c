"""`madn promote`: put a sweep's best model in the MLflow model registry, and load it back.

1. The best trial of the experiment's latest sweep (highest `metric` at its last epoch, over
   trials whose run holds a checkpoint; `--mode min` for lower-is-better metrics).
2. Its checkpoint is evaluated on the dataset's test split with the same validation code
   (`pipelines.training.validation.Validator`), giving `test/...` metrics; the test metric matching
   `metric` (val/score -> test/score) is the promotion criterion.
3. A promotion run (nested under the sweep run) logs the model with `mlflow.pytorch`: the
   `madn_core.Corrector` (E_Ia + G_I), a signature and input example ((1, C, H, W) float32 in
   [-1, 1]), `madn_core` shipped as code so loading needs only torch and numpy, and the
   preprocessing it needs (variant, channels, image size, CT window, MRI percentiles) as model
   metadata and version tags.
4. A new registry version gets alias `challenger`. The current `champion`, if any, is evaluated
   on the same test split now; `champion` moves to the new version only if it is better. The
   evidence (both scores, the dataset, the decision) goes into the new version's tags.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from madn_core.checkpoint import load_model
from madn_core.corrector import Corrector
from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.data.intensity import IntensityConfig
from pipelines.training.validation import Validator
from tune import tracking
from tune.errors import ServiceError


class PromotionError(ServiceError):
    """Nothing can be promoted; the message says why."""


@dataclass
class PromotionResult:
    model_name: str
    version: str
    source_run_id: str
    test_metric: str
    challenger_score: float
    champion_score: float | None
    promoted: bool
    model_uri: str


def test_metric_name(metric: str) -> str:
    return "test/" + metric.split("/", 1)[1] if metric.startswith("val/") else f"test/{metric}"


def best_trial_run(uri: str, experiment: str, metric: str, mode: str = "max") -> Any:
    """The trial run with the best last `metric` among those that logged a checkpoint."""
    experiment_id, sweep = tracking.latest_sweep_run(uri, experiment)
    trials = tracking.trial_runs(uri, experiment_id, sweep.data.tags[tracking.SWEEP])
    scored = [
        r
        for r in trials
        if metric in r.data.metrics
        and math.isfinite(r.data.metrics[metric])
        and r.data.tags.get(tracking.OUTCOME) in ("finished", "stopped_early")
    ]
    if not scored:
        raise PromotionError(
            f"experiment {experiment!r} has no finished trial with metric {metric!r}"
        )
    sign = 1.0 if mode == "max" else -1.0
    return max(scored, key=lambda r: sign * r.data.metrics[metric])


def _download_checkpoint(uri: str, run_id: str, folder: Path) -> Path:
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id,
        artifact_path="checkpoint/last.ckpt",
        dst_path=str(folder),
        tracking_uri=uri,
    )
    return Path(local)


def test_scores(model: torch.nn.Module, data: str, max_slices: int = 512) -> dict[str, float]:
    """`test/...` metrics of a model on the dataset's test split (pipelines.training.validation)."""
    dataset = SliceDataset(data)
    if model.config.image_size != dataset.size:
        raise PromotionError(
            f"model works on {model.config.image_size} px slices, {data} has {dataset.size} px"
        )
    validator = Validator(
        dataset, channels_for_variant(model.config.variant), split="test", max_slices=max_slices
    )
    metrics = validator(model.cpu().eval(), 0)
    return {"test/" + k.split("/", 1)[1]: v for k, v in metrics.items()}


def _better(new: float, old: float | None, mode: str) -> bool:
    if old is None or not math.isfinite(old):
        return math.isfinite(new)
    return new > old if mode == "max" else new < old


def promote(
    experiment: str,
    model_name: str,
    metric: str = "val/score",
    mode: str = "max",
    tracking_uri: str | None = None,
    data: str | None = None,
    workdir: str = ".",
) -> PromotionResult:
    """Register the best trial's model (see module doc). `data`: the dataset whose test split
    decides (default: the one the sweep trained on)."""
    import mlflow
    import mlflow.pytorch
    from mlflow.models import infer_signature

    import madn_core

    uri = tracking.resolve_tracking_uri(tracking_uri, workdir)
    best = best_trial_run(uri, experiment, metric, mode)
    data = data or best.data.params.get("data") or _parent_param(uri, best, "data")
    if not data:
        raise PromotionError(f"run {best.info.run_id} does not record its dataset; pass --data")
    client = tracking.client(uri)
    folder = Path(tempfile.mkdtemp(prefix="madn-promote-"))
    try:
        model = load_model(_download_checkpoint(uri, best.info.run_id, folder / "ckpt"))
        scores = test_scores(model, data)
        criterion = test_metric_name(metric)
        if criterion not in scores:
            raise PromotionError(f"{criterion} is not a test metric; choose another --metric")
        new_score = float(scores[criterion])
        champion_version, champion_score = _champion(uri, model_name, data, criterion)
        corrector = Corrector(model).eval()
        channels = channels_for_variant(model.config.variant)
        size = model.config.image_size
        example = torch.zeros(1, len(channels), size, size)
        with torch.no_grad():
            output = corrector(example).numpy()
        preprocessing = _preprocessing(model.config.variant, channels, size)
        parent = best.data.tags.get(tracking.PARENT)
        with tracking.fluent_uri(uri):
            with mlflow.start_run(
                experiment_id=best.info.experiment_id,
                run_name=f"promote-{best.info.run_name}",
                tags={
                    tracking.ROLE: "promotion",
                    tracking.PARENT: parent or "",
                    "madn.source_run_id": best.info.run_id,
                },
            ) as run:
                mlflow.log_params(
                    {"source_run_id": best.info.run_id, "data": data, **preprocessing}
                )
                mlflow.log_metrics({k: v for k, v in scores.items() if math.isfinite(v)})
                info = mlflow.pytorch.log_model(
                    corrector,
                    name="model",
                    signature=infer_signature(example.numpy(), output),
                    input_example=example.numpy(),
                    metadata={"madn": preprocessing},
                    code_paths=[str(Path(madn_core.__file__).parent)],
                    serialization_format="pickle",  # keeps Corrector.config and .correct
                    pip_requirements=[f"torch>={torch.__version__.split('+')[0]}", "numpy"],
                )
                promotion_run = run.info.run_id
            version = mlflow.register_model(info.model_uri, model_name)
        promoted = _better(new_score, champion_score, mode)
        tags = {
            **preprocessing,
            "source_run_id": best.info.run_id,
            "promotion_run_id": promotion_run,
            "test_metric": criterion,
            "test_score": repr(new_score),
            "test_data": data,
            "champion_before": str(champion_version or "none"),
            "champion_score_before": repr(champion_score) if champion_score is not None else "none",
            "decision": "champion" if promoted else "challenger only",
        }
        for key, value in tags.items():
            tracking.with_retries(
                client.set_model_version_tag, model_name, version.version, key, value
            )
        tracking.with_retries(
            client.set_registered_model_alias, model_name, "challenger", version.version
        )
        if promoted:
            tracking.with_retries(
                client.set_registered_model_alias, model_name, "champion", version.version
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return PromotionResult(
        model_name=model_name,
        version=str(version.version),
        source_run_id=best.info.run_id,
        test_metric=criterion,
        challenger_score=new_score,
        champion_score=champion_score,
        promoted=promoted,
        model_uri=f"models:/{model_name}/{version.version}",
    )


def _champion(
    uri: str, model_name: str, data: str, criterion: str
) -> tuple[str | None, float | None]:
    """(version, `criterion` score on `data`) of the current `champion`, (None, None) without
    one. A champion that cannot be scored on `data` keeps the score it was promoted with."""
    try:
        current = tracking.client(uri).get_model_version_by_alias(model_name, "champion")
    except Exception:
        return None, None
    try:
        champion = load_registered_model(f"models:/{model_name}@champion", uri)
        return current.version, float(test_scores(champion, data)[criterion])
    except PromotionError:
        tag = current.tags.get("test_score")
        return current.version, float(tag) if tag is not None else None


def _preprocessing(variant: str, channels: tuple[str, ...], size: int) -> dict[str, str]:
    """What a registered model's input needs, as model metadata and version tags."""
    intensity = IntensityConfig()
    return {
        "variant": variant,
        "channels": ",".join(channels),
        "image_size": str(size),
        "ct_window_hu": f"{intensity.ct_min},{intensity.ct_max}",
        "mri_percentiles": ",".join(str(p) for p in intensity.mri_percentiles),
        "input_range": "-1,1",
    }


def _parent_param(uri: str, run: Any, name: str) -> str | None:
    parent = run.data.tags.get(tracking.PARENT)
    if not parent:
        return None
    return tracking.client(uri).get_run(parent).data.params.get(name)


def load_registered_model(
    source: str, tracking_uri: str | None = None, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """A model from an MLflow URI (`models:/NAME@alias`, `models:/NAME/3`, `runs:/ID/model`)
    with `config` and `correct`, in eval mode. A trial run's `runs:/ID/checkpoint` is read as a
    training checkpoint."""
    import mlflow
    import mlflow.pytorch

    uri = tracking.resolve_tracking_uri(tracking_uri)
    if source.startswith("runs:/") and source.rstrip("/").endswith("checkpoint"):
        import mlflow.artifacts

        folder = tempfile.mkdtemp(prefix="madn-ckpt-")
        try:
            with tracking.fluent_uri(uri):
                path = mlflow.artifacts.download_artifacts(
                    f"{source.rstrip('/')}/last.ckpt", dst_path=folder
                )
            return load_model(path, map_location=device)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    try:
        with tracking.fluent_uri(uri):
            model = mlflow.pytorch.load_model(source, map_location=device)
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FileNotFoundError(f"--model {source}: cannot load from {uri}: {message}") from None
    if not hasattr(model, "config") or not hasattr(model, "correct"):
        raise ValueError(f"--model {source} is not a madn model (no config/correct)")
    return model.to(device).eval()
