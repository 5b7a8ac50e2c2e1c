"""`madn promote`: register a trained model in the MLflow model registry behind a promotion
gate, and load registered models back.

1. The candidate: a run given by `--run-id`, else the best trial (highest `metric` at its last
   epoch, `--mode min` for lower-is-better metrics) of the experiment's sweep named `--sweep`
   (default: the latest), among trials of `--variant` when given.
2. Its checkpoint (`best.ckpt`, the epoch validation chose, else `last.ckpt`) is scored on the
   dataset's test split with the validation code, overall and per test subject
   (`tune.evidence`): `test/...` metrics and a paired test of the per-subject gains.
3. A promotion run logs the model as a servable pyfunc in scanner units (`tune.serving`: HU
   slices of any size plus their spacing in, corrected HU out; a real test slice as input
   example; the preprocessing as metadata) and the evidence as `evidence.json`.
4. The new registry version gets alias `challenger`. It also becomes `champion` only if it
   passes the gate: its test score beats No MAR (`test/score` > 0 dB) and it beats the current
   champion, scored on the same test split now. The decision and its reason go into the
   version's tags; `PromotionResult.reason` says why a version was not crowned.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from madn_core.checkpoint import load_model
from madn_core.corrector import Corrector
from pipelines.data.dataset import channels_for_variant
from tune import tracking
from tune.errors import ServiceError
from tune.evidence import TestEvidence, collect_evidence

NO_MAR_METRIC = "test/score"


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
    reason: str = ""
    p_value: float = math.nan
    test_subjects: int = 0  # implanted test subjects behind the score and p_value


def test_metric_name(metric: str) -> str:
    return "test/" + metric.split("/", 1)[1] if metric.startswith("val/") else f"test/{metric}"


def _sweep_run(uri: str, experiment: str, sweep: str | None) -> tuple[str, Any]:
    """(experiment id, sweep run): the sweep named `sweep`, else the latest."""
    experiment_id, latest = tracking.latest_sweep_run(uri, experiment)
    if sweep is None:
        return experiment_id, latest
    runs = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep", tracking.SWEEP: sweep})
    if not runs:
        raise PromotionError(f"experiment {experiment!r} has no sweep named {sweep!r}")
    return experiment_id, runs[0]


def best_trial_run(
    uri: str,
    experiment: str,
    metric: str,
    mode: str = "max",
    sweep: str | None = None,
    variant: str | None = None,
) -> Any:
    """The trial run with the best last `metric` among those that logged a checkpoint."""
    experiment_id, sweep_run = _sweep_run(uri, experiment, sweep)
    trials = tracking.trial_runs(uri, experiment_id, sweep_run.data.tags[tracking.SWEEP])
    scored = [
        r
        for r in trials
        if metric in r.data.metrics
        and math.isfinite(r.data.metrics[metric])
        and r.data.tags.get(tracking.OUTCOME) in ("finished", "stopped_early")
        and (variant is None or r.data.params.get("variant") == variant)
    ]
    if not scored:
        which = f" of variant {variant!r}" if variant else ""
        raise PromotionError(
            f"experiment {experiment!r} has no finished trial{which} with metric {metric!r}"
        )
    sign = 1.0 if mode == "max" else -1.0
    return max(scored, key=lambda r: sign * r.data.metrics[metric])


def candidate_run(uri: str, experiment: str, metric: str, mode: str, choice: Choice) -> Any:
    """The run to promote: `choice.run_id`, else the best trial of the chosen sweep."""
    if choice.run_id is None:
        return best_trial_run(uri, experiment, metric, mode, choice.sweep, choice.variant)
    try:
        run = tracking.with_retries(tracking.client(uri).get_run, choice.run_id)
    except Exception as error:
        raise PromotionError(f"--run-id {choice.run_id}: no such run in {uri} ({error})") from None
    variant = run.data.params.get("variant")
    if choice.variant is not None and variant != choice.variant:
        raise PromotionError(
            f"--run-id {choice.run_id} is of variant {variant!r}, not {choice.variant!r}"
        )
    return run


@dataclass
class Choice:
    """What `promote` considers: one run, or a sweep's trials (optionally of one variant)."""

    sweep: str | None = None
    run_id: str | None = None
    variant: str | None = None
    min_gain_db: float = 0.0


def _download_checkpoint(uri: str, run_id: str, folder: Path) -> Path:
    """The run's `checkpoint/best.ckpt`, else its `checkpoint/last.ckpt`, downloaded."""
    import mlflow.artifacts

    names = {
        Path(f.path).name
        for f in tracking.with_retries(tracking.client(uri).list_artifacts, run_id, "checkpoint")
    }
    name = "best.ckpt" if "best.ckpt" in names else "last.ckpt"
    if name not in names:
        raise PromotionError(f"run {run_id} has no checkpoint/best.ckpt or checkpoint/last.ckpt")
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id,
        artifact_path=f"checkpoint/{name}",
        dst_path=str(folder),
        tracking_uri=uri,
    )
    return Path(local)


def test_scores(model: torch.nn.Module, data: str, max_slices: int = 512) -> dict[str, float]:
    """`test/...` metrics of a model on the dataset's test split (pipelines.training.validation)."""
    return collect_evidence(model, data, max_slices).scores


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
    choice: Choice | None = None,
) -> PromotionResult:
    """Register the chosen run's model behind the gate (see module doc). `data`: the dataset
    whose test split decides (default: the one the run trained on)."""
    uri = tracking.connect(tracking_uri, workdir, create=False)
    run = candidate_run(uri, experiment, metric, mode, choice or Choice())
    data = data or run.data.params.get("data") or _parent_param(uri, run, "data")
    if not data:
        raise PromotionError(f"run {run.info.run_id} does not record its dataset; pass --data")
    criterion = test_metric_name(metric)
    folder = Path(tempfile.mkdtemp(prefix="madn-promote-"))
    try:
        model = load_model(_download_checkpoint(uri, run.info.run_id, folder / "ckpt"))
        evidence = collect_evidence(model, data)
        if criterion not in evidence.scores:
            raise PromotionError(f"{criterion} is not a test metric; choose another --metric")
        champion_version, champion_score = _champion(uri, model_name, data, criterion)
        version = _log_and_register(uri, run, model, evidence, data, model_name, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    new_score = float(evidence.scores[criterion])
    min_gain = (choice or Choice()).min_gain_db
    promoted, reason = gate(evidence.score, new_score, champion_score, mode, min_gain)
    _record_decision(
        uri,
        model_name,
        version,
        evidence,
        criterion,
        data,
        promoted,
        reason,
        champion_version,
        champion_score,
    )
    return PromotionResult(
        model_name=model_name,
        version=version,
        source_run_id=run.info.run_id,
        test_metric=criterion,
        challenger_score=new_score,
        champion_score=champion_score,
        promoted=promoted,
        model_uri=f"models:/{model_name}/{version}",
        reason=reason,
        p_value=evidence.p_value,
        test_subjects=len(evidence.subject_scores),
    )


def gate(
    nomar_gain: float,
    score: float,
    champion_score: float | None,
    mode: str,
    min_gain_db: float = 0.0,
) -> tuple[bool, str]:
    """(crown?, reason): a version is crowned only if it beats No MAR (`nomar_gain`, the test
    score in dB, > min_gain_db, by default 0) and the current champion on the same metric."""
    if not (math.isfinite(nomar_gain) and nomar_gain > min_gain_db):
        return False, (
            f"test score {nomar_gain:+.3f} dB does not beat No MAR (needs > {min_gain_db:+.3f} dB)"
        )
    if not _better(score, champion_score, mode):
        return False, f"test score {score:.4f} does not beat the champion's {champion_score:.4f}"
    if champion_score is None:
        return True, f"beats No MAR by {nomar_gain:+.3f} dB; no champion before"
    return True, f"beats No MAR by {nomar_gain:+.3f} dB and the champion ({champion_score:.4f})"


def example_slice(data: str, config: Any) -> np.ndarray:
    """(1, C, H, W) float32: one real slice of the dataset in scanner units (CT in HU, MRI in
    its ingested range), a test slice with metal when there is one: the pyfunc's input example."""
    from pipelines.data.dataset import SliceDataset
    from pipelines.data.intensity import unit_to_hu, unit_to_mri

    dataset = SliceDataset(data)
    positions = dataset.select(split="test", has_metal=True)
    if len(positions) == 0:
        positions = dataset.select()
    columns = ["ct", "mri", "ct_min", "ct_max", "mri_low", "mri_high"]
    row = dataset.read(positions[:1], columns)
    values = {
        "ct": unit_to_hu(row["ct"][0], float(row["ct_min"][0]), float(row["ct_max"][0])),
        "mri": unit_to_mri(row["mri"][0], float(row["mri_low"][0]), float(row["mri_high"][0])),
    }
    channels = channels_for_variant(config.variant)
    return np.stack([values[c] for c in channels])[None].astype(np.float32)


def _log_and_register(
    uri: str,
    run: Any,
    model: torch.nn.Module,
    evidence: TestEvidence,
    data: str,
    model_name: str,
    folder: Path,
) -> str:
    """Log the servable pyfunc (`tune.serving`) and the evidence in a promotion run; register
    it; the version."""
    import mlflow

    from tune.serving import log_servable_model

    preprocessing = _preprocessing(model.config)
    evidence_file = folder / "evidence.json"
    evidence_file.write_text(json.dumps(evidence.summary(), indent=2))
    with tracking.fluent_uri(uri):
        with mlflow.start_run(
            experiment_id=run.info.experiment_id,
            run_name=f"promote-{run.info.run_name}",
            tags={
                tracking.ROLE: "promotion",
                tracking.PARENT: run.data.tags.get(tracking.PARENT) or "",
                "madn.source_run_id": run.info.run_id,
            },
        ):
            mlflow.log_params({"source_run_id": run.info.run_id, "data": data, **preprocessing})
            mlflow.log_metrics({k: v for k, v in evidence.scores.items() if math.isfinite(v)})
            mlflow.log_artifact(str(evidence_file))
            example = example_slice(data, model.config)
            info = log_servable_model(model, example, folder, preprocessing)
        version = mlflow.register_model(info.model_uri, model_name)
    tags = {**preprocessing, "source_run_id": run.info.run_id, "promotion_run_id": info.run_id}
    for key, value in tags.items():
        tracking.with_retries(
            tracking.client(uri).set_model_version_tag, model_name, version.version, key, value
        )
    return str(version.version)


def _record_decision(
    uri: str,
    model_name: str,
    version: str,
    evidence: TestEvidence,
    criterion: str,
    data: str,
    promoted: bool,
    reason: str,
    champion_version: str | None,
    champion_score: float | None,
) -> None:
    """Tags with the evidence and decision on the version; aliases challenger (+ champion)."""
    client = tracking.client(uri)
    tags = {
        "test_metric": criterion,
        "test_score": repr(float(evidence.scores[criterion])),
        "nomar_gain_db": repr(evidence.score),
        "paired_p_value": repr(evidence.p_value),
        "test_subjects": str(len(evidence.subject_scores)),
        "subject_gains_db": json.dumps(
            {k: round(v, 3) for k, v in evidence.subject_scores.items()}
        ),
        "test_data": data,
        "champion_before": str(champion_version or "none"),
        "champion_score_before": repr(champion_score) if champion_score is not None else "none",
        "decision": "champion" if promoted else "challenger only",
        "reason": reason,
    }
    for key, value in tags.items():
        tracking.with_retries(client.set_model_version_tag, model_name, version, key, value)
    _describe(client, model_name, version, evidence, promoted, reason)
    aliases = ["challenger", "champion"] if promoted else ["challenger"]
    for alias in aliases:
        tracking.with_retries(client.set_registered_model_alias, model_name, alias, version)


MODEL_DESCRIPTION = (
    "madn metal artefact reduction models (CT and/or registered MRI). Each version's test score "
    "is the mean PSNR gain in dB over No MAR (the uncorrected input) on the test split of its "
    "dataset: 0 dB means no better than not correcting, below 0 worse. Alias `champion`: the "
    "version the promotion gate crowned (it beat No MAR and the previous champion); "
    "`challenger`: the latest version considered. Tags hold the per-subject evidence."
)


def _describe(
    client: Any,
    model_name: str,
    version: str,
    evidence: TestEvidence,
    promoted: bool,
    reason: str,
) -> None:
    """Descriptions the MLflow UI shows: what the registered model is, and per version its
    variant, its gain over No MAR and the gate's decision."""
    registered = tracking.with_retries(client.get_registered_model, model_name)
    if not registered.description:
        tracking.with_retries(
            client.update_registered_model, model_name, description=MODEL_DESCRIPTION
        )
    variant = tracking.with_retries(client.get_model_version, model_name, version).tags.get(
        "variant", "?"
    )
    decision = "champion" if promoted else "challenger only"
    text = (
        f"{variant}: {evidence.score:+.2f} dB over No MAR on {len(evidence.subject_scores)} test "
        f"subjects (one-sided paired p = {evidence.p_value:.3g}). Gate: {decision} ({reason})."
    )
    tracking.with_retries(client.update_model_version, model_name, version, description=text)


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


def _preprocessing(config: Any) -> dict[str, str]:
    """What a registered model's input needs, as model metadata and version tags: from the
    model's recorded data spec (pixel spacing, CT window, MRI percentiles)."""
    data = config.data
    channels = channels_for_variant(config.variant)
    return {
        "variant": config.variant,
        "channels": ",".join(channels),
        "image_size": str(config.image_size),
        "pixel_spacing_mm": f"{data.spacing_mm:g}" if data.spacing_mm > 0 else "unknown",
        "ct_window_hu": ",".join(f"{v:g}" for v in data.ct_window_hu),
        "mri_percentiles": ",".join(f"{v:g}" for v in data.mri_percentiles),
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
    import mlflow.artifacts

    uri = tracking.connect(tracking_uri, create=False)
    if source.startswith("runs:/") and source.rstrip("/").endswith("checkpoint"):
        folder = tempfile.mkdtemp(prefix="madn-ckpt-")
        try:
            with tracking.fluent_uri(uri):
                path = mlflow.artifacts.download_artifacts(
                    f"{source.rstrip('/')}/last.ckpt", dst_path=folder
                )
            return load_model(path, map_location=device)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    folder = tempfile.mkdtemp(prefix="madn-model-")
    try:
        try:
            with tracking.fluent_uri(uri):
                local = Path(mlflow.artifacts.download_artifacts(source, dst_path=folder))
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise FileNotFoundError(
                f"--model {source}: cannot load from {uri}: {message}"
            ) from None
        model = _model_from_folder(local, device)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not hasattr(model, "config") or not hasattr(model, "correct"):
        raise ValueError(f"--model {source} is not a madn model (no config/correct)")
    return model.to(device).eval()


def _model_from_folder(local: Path, device: torch.device | str) -> torch.nn.Module:
    """The Corrector in a downloaded MLflow model folder: the servable pyfunc's checkpoint
    artifact, or (versions registered before it) the `mlflow.pytorch` pickle."""
    from tune.serving import CHECKPOINT_ARTIFACT

    checkpoint = local / "artifacts" / "model.ckpt"
    if checkpoint.is_file():
        return Corrector(load_model(checkpoint, map_location=device))
    if (local / "data").is_dir():
        import mlflow.pytorch

        return mlflow.pytorch.load_model(str(local), map_location=device)
    raise ValueError(f"{local.name}: no {CHECKPOINT_ARTIFACT} artifact and no pytorch model")
