"""`madn sweep`: Ray Tune over lambda_sim, the LNCC sigma and the similarity metric.

- Search: OptunaSearch (TPE, seeded) over a define-by-run space (`tune.space`; sigma only for
  LNCC), whose first trials cover each similarity metric once; the fixed baseline trials
  (e.g. multichannel ADN) run beside it (`tune.searcher.FixedThenSearch`); a ConcurrencyLimiter
  caps concurrent trials.
- Scheduling: ASHA on the reported validation metric with `time_attr="epoch"`, `max_t` = the
  schedule, so poor trials stop after `grace_period` epochs.
- Resources: `cpus_per_trial` and `gpus_per_trial` per trial (fractions let several trials
  share one GPU).
- Checkpoints with every report, persisted to `storage` (a path or a shared URI) as
  `<storage>/<experiment>`; `FailureConfig(max_failures)` retries a failed trial from its last
  checkpoint; `resume=True` continues an interrupted sweep with `Tuner.restore` without re-running
  finished trials.
- Stopping (`tune.stopping`): Ctrl-C (SIGINT) and SIGTERM (`ray job stop`, Kubernetes, `kill`)
  both make Tune save the sweep state and stop; the sweep's MLflow run is then KILLED with
  `madn.outcome=interrupted` and `SweepResult.interrupted` is true. A second signal ends the
  driver at once.
- Tracking (`tune.tracking`): a parent MLflow run per sweep and a nested run per trial; the
  store and experiment are created here, in the driver, before any trial starts.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.data.dataset import SliceDataset
from pipelines.data.locations import is_uri, join_uri, redact
from tune import local_ray, tracking
from tune.errors import ServiceError
from tune.space import SearchSpace
from tune.stopping import StopSignals

DEFAULT_STORAGE = "runs/ray"


@dataclass
class SweepSettings:
    """Everything `madn sweep` takes (flags or a `--config` YAML with the same keys).

    model: `madn train` settings shared by every trial (base_channels, num_res, batch_size, lr,
    seed, ...); name: the sweep's name (Tune folder `<storage>/<name>`, tag `madn.sweep`;
    default: the experiment name); space/baselines: see `tune.space`; workdir: where the
    embedded MLflow store and the default storage folder go."""

    data: str
    trials: int = 8
    max_concurrent: int = 2
    gpus_per_trial: float = 0.0
    cpus_per_trial: float = 1.0
    epochs: int = 3
    metric: str = "val/score"
    mode: str = "max"
    experiment: str = "madn-sweep"
    name: str | None = None
    tracking_uri: str | None = None
    storage: str | None = None
    address: str | None = None
    resume: bool = False
    seed: int = 0
    space: dict[str, Any] | None = None
    baselines: list[dict[str, Any]] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    grace_period: int = 1
    reduction_factor: int = 2
    max_failures: int = 1
    max_val_slices: int = 64
    cover_choices: bool = True
    pending_timeout: float = 300.0
    autoscaling: bool = False
    workdir: str = "."
    verbose: int = 1

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise ValueError(f"trials must be >= 0, got {self.trials}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be max or min, got {self.mode!r}")
        if not self.metric.startswith("val/"):
            raise ValueError(f"metric must be a validation metric (val/...), got {self.metric!r}")
        if self.epochs < 1 or self.max_concurrent < 1 or self.grace_period < 1:
            raise ValueError("epochs, max_concurrent and grace_period must be >= 1")
        if self.gpus_per_trial < 0 or self.cpus_per_trial <= 0:
            raise ValueError("gpus_per_trial must be >= 0 and cpus_per_trial > 0")
        if self.pending_timeout <= 0:
            raise ValueError(f"pending_timeout must be > 0 s, got {self.pending_timeout}")
        for what, value in (("experiment", self.experiment), ("name", self.sweep_name)):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
                raise ValueError(f"{what} {value!r}: use letters, digits, '.', '_' and '-'")

    @property
    def sweep_name(self) -> str:
        return self.name or self.experiment


@dataclass
class SweepResult:
    """Where the sweep is and what won. `interrupted`: the driver was stopped before every trial
    ended; `madn sweep --resume` continues it."""

    experiment: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    storage_path: str
    best_trial_id: str | None
    best_run_id: str | None
    best_config: dict[str, Any]
    best_value: float | None
    outcomes: dict[str, int]
    interrupted: bool = False


def storage_root(settings: SweepSettings) -> str:
    """The storage path or URI, absolute when local."""
    workdir = tracking.madn_home() if settings.workdir == "." else Path(settings.workdir)
    storage = settings.storage or str(workdir / DEFAULT_STORAGE)
    if is_uri(storage):
        return storage
    return str(Path(storage).expanduser().resolve())


def _experiment_exists(path: str) -> bool:
    from ray import tune

    return tune.Tuner.can_restore(path)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A one-line ServiceError at once when nothing listens at a `host:port` or `ray://host:port`
    address (Ray itself keeps retrying a missing head for minutes). `auto` is left to Ray."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ServiceError(
            f"Ray cluster {address} is unreachable ({reason}); start it "
            "(infra/local/start-ray-cluster.sh, ray up) or fix --address"
        ) from None


def _init_ray(address: str | None, attempts: int = 3) -> bool:
    """Connect to `address` or start a local runtime sized to the machine; True if started.

    A connection that fails is tried again (`attempts` in all, 2 s apart): through Ray Client
    (`ray://`) the head starts a server per driver, and that start was seen to fail once in a
    while on a loaded machine. Then a one-line ServiceError names the address."""
    import ray

    if ray.is_initialized():
        return False
    if not address:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False)
        return True
    _check_reachable(address)
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
            return True
        except ConnectionError as error:
            if ray.is_initialized():
                ray.shutdown()
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            if attempt < attempts:
                print(
                    f"madn sweep: connecting to {address} failed ({first_line}); trying again "
                    f"({attempt + 1}/{attempts})",
                    file=sys.stderr,
                )
            else:
                raise ServiceError(
                    f"cannot connect to the Ray cluster at {address} ({first_line}); is it "
                    "running, and are RAY_AUTH_MODE/RAY_AUTH_TOKEN_PATH set for its token?"
                ) from error
            time.sleep(2.0)
    raise AssertionError("unreachable")


def _build_searcher(settings: SweepSettings, space: SearchSpace) -> Any:
    from optuna.samplers import TPESampler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from tune.searcher import FixedThenSearch

    inner = OptunaSearch(
        space=space.define_by_run(),
        metric=settings.metric,
        mode=settings.mode,
        sampler=TPESampler(seed=settings.seed),
        points_to_evaluate=(
            space.covering_points()[: settings.trials] if settings.cover_choices else []
        )
        or None,
    )
    fixed = FixedThenSearch(inner, list(space.baselines))
    return ConcurrencyLimiter(fixed, max_concurrent=settings.max_concurrent)


def _trainable(settings: SweepSettings, trial_settings: Any) -> Any:
    from ray import tune

    from tune.trainable import run_trial

    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(run_trial, settings=trial_settings), resources)


def _log_sweep_config(uri: str, run_id: str, settings: SweepSettings, space: SearchSpace) -> None:
    params = {
        k: redact(v) if isinstance(v, str) else v
        for k, v in asdict(settings).items()
        if k not in ("space", "baselines", "model", "resume", "verbose", "workdir")
    }
    params.update({f"model.{k}": v for k, v in settings.model.items()})
    tracking.log_params(uri, run_id, params)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "search_space.json"
        path.write_text(json.dumps(space.to_dict(), indent=2))
        tracking.with_retries(tracking.client(uri).log_artifact, run_id, str(path))


def trial_outcomes(uri: str, experiment_id: str, sweep: str) -> dict[str, int]:
    """Counts of trial outcomes (finished, stopped_early, error, running) from MLflow."""
    runs = tracking.trial_runs(uri, experiment_id, sweep)
    return dict(Counter(r.data.tags.get(tracking.OUTCOME, "running") for r in runs))


def _check_sweep_path(settings: SweepSettings, storage: str, path: str) -> None:
    """A new sweep must not exist yet; a resumed one must."""
    sweep = settings.sweep_name
    exists = _experiment_exists(path)
    if exists and not settings.resume:
        raise FileExistsError(
            f"sweep {sweep!r} already exists in {redact(storage)}: pass --resume to continue "
            "it, or choose another --name"
        )
    if settings.resume and not exists:
        raise FileNotFoundError(f"--resume: no sweep {sweep!r} to resume in {redact(storage)}")


def _build_tuner(
    settings: SweepSettings,
    trainable: Any,
    space: SearchSpace,
    callbacks: list[Any],
    stopper: Any,
    storage: str,
    path: str,
) -> Any:
    """Tuner.restore when resuming, else a new Tuner with the searcher, ASHA, the `callbacks`
    and the sweep-wide `stopper`."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    if settings.resume:
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    scheduler = ASHAScheduler(
        time_attr="epoch",
        metric=settings.metric,
        mode=settings.mode,
        max_t=settings.epochs,
        grace_period=min(settings.grace_period, settings.epochs),
        reduction_factor=settings.reduction_factor,
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=_build_searcher(settings, space),
            scheduler=scheduler,
            num_samples=settings.trials + len(space.baselines),
        ),
        run_config=tune.RunConfig(
            name=settings.sweep_name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks,
            stop=stopper,
            verbose=settings.verbose,
        ),
    )


def _preflight_data(settings: SweepSettings, space: SearchSpace) -> tuple[str, SliceDataset]:
    """(data location, dataset) once every variant the sweep can draw can train on it."""
    from tune.preflight import check_dataset, drawable_variants

    data = settings.data if is_uri(settings.data) else str(Path(settings.data).resolve())
    dataset = SliceDataset(data)
    check_dataset(dataset, {**settings.model, "epochs": settings.epochs}, drawable_variants(space))
    return data, dataset


def _tuner_for(
    settings: SweepSettings, space: SearchSpace, trial: Any, storage: str, path: str
) -> Any:
    """The Tuner of the sweep, with the MLflow outcome callback and the pending-timeout watch
    (`tune.preflight`); `trial`: the TrialSettings every trial shares."""
    from tune import preflight
    from tune.outcomes import MLflowOutcomes

    pending = preflight.PendingState(
        settings.pending_timeout, settings.cpus_per_trial, settings.gpus_per_trial
    )
    callbacks = [
        MLflowOutcomes(
            trial.tracking_uri,
            trial.experiment_id,
            trial.parent_run_id,
            trial.sweep,
            settings.epochs,
        ),
        preflight.PendingCallback(pending),
    ]
    stopper = preflight.PendingStopper(pending)
    trainable = _trainable(settings, trial)
    return _build_tuner(settings, trainable, space, callbacks, stopper, storage, path)


def run_sweep(settings: SweepSettings) -> SweepResult:
    """Run (or resume) the sweep; see the module doc. Preflight (`tune.preflight`) comes before
    any trial or MLflow run; a local Ray runtime started here is shut down on every exit."""
    from tune import preflight
    from tune.trainable import TrialSettings

    space = SearchSpace.from_config(settings.space, settings.baselines)
    data, dataset = _preflight_data(settings, space)
    uri = tracking.connect(settings.tracking_uri, settings.workdir)
    experiment_id = tracking.ensure_experiment(uri, settings.experiment)
    storage = storage_root(settings)
    sweep = settings.sweep_name
    path = join_uri(storage, sweep)
    _check_sweep_path(settings, storage, path)
    # with a checkpoint every epoch Tune warns about frequent state snapshots; they are cheap here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    preflight.LIVE_STATES.clear()
    spared = local_ray.descendants(os.getpid())  # not Ray's: kept by the shutdown below
    started = _init_ray(settings.address)  # first: a wrong address leaves no MLflow run behind
    parent: str | None = None
    outcome = ("KILLED", "interrupted")
    try:
        preflight.check_resources(
            settings.cpus_per_trial, settings.gpus_per_trial, settings.autoscaling
        )
        parent = tracking.start_sweep_run(uri, experiment_id, sweep, settings.resume)
        if not settings.resume:
            _log_sweep_config(uri, parent, settings, space)
            for key, value in tracking.provenance_tags(dataset).items():
                tracking.with_retries(tracking.client(uri).set_tag, parent, key, value)
            tracking.log_dataset_input(uri, parent, dataset)
        trial_settings = TrialSettings(
            data=data,
            model={**settings.model, "epochs": settings.epochs},
            tracking_uri=uri,
            experiment_id=experiment_id,
            parent_run_id=parent,
            sweep=sweep,
            image_size=dataset.size,
            max_val_slices=settings.max_val_slices,
        )
        tuner = _tuner_for(settings, space, trial_settings, storage, path)
        with StopSignals() as stop:
            results = tuner.fit()
        stalled = preflight.stall_message()
        if stalled:
            outcome = ("FAILED", "pending_timeout")
            raise ServiceError(f"sweep {sweep!r} stopped: {stalled}")
    except BaseException:
        if parent is not None:
            tracking.finish_run(uri, parent, outcome[0], {tracking.OUTCOME: outcome[1]})
        raise
    finally:
        if started and local_ray.shutdown_local_ray(spared):
            print(
                f"madn sweep: Ray workers still running {local_ray.GRACE_S:.0f} s after shutdown "
                "were killed",
                file=sys.stderr,
            )
    assert parent is not None
    return _finish(settings, results, uri, experiment_id, parent, path, stop.requested is not None)


def _finish(
    settings: SweepSettings,
    results: Any,
    uri: str,
    experiment_id: str,
    parent: str,
    path: str,
    interrupted: bool,
) -> SweepResult:
    if not interrupted:
        close_stale_trial_runs(uri, experiment_id, settings.sweep_name, results, settings.epochs)
    outcomes = trial_outcomes(uri, experiment_id, settings.sweep_name)
    best_trial_id = best_run_id = None
    best_config: dict[str, Any] = {}
    best_value: float | None = None
    try:
        best = results.get_best_result(settings.metric, settings.mode, filter_nan_and_inf=True)
    except RuntimeError:
        best = None
    if best is not None and best.metrics and settings.metric in best.metrics:
        best_trial_id = best.metrics.get("trial_id")
        best_config = dict(best.config or {})
        best_value = float(best.metrics[settings.metric])
        runs = tracking.find_runs(
            uri,
            experiment_id,
            {tracking.TRIAL_ID: best_trial_id, tracking.SWEEP: settings.sweep_name},
        )
        best_run_id = runs[0].info.run_id if runs else None
    tags = {f"madn.trials_{k}": str(v) for k, v in outcomes.items()}
    _drop_stale_counts(uri, parent, tags)
    if best_run_id:
        tags.update({"madn.best_run_id": best_run_id, "madn.best_trial_id": str(best_trial_id)})
        tracking.log_metrics(uri, parent, {f"best/{settings.metric}": best_value}, step=0)
        if not interrupted:  # MLflow params cannot change: only the final winner's are logged
            tracking.log_params(uri, parent, {f"best.{k}": v for k, v in best_config.items()})
    if interrupted:
        status = "KILLED"
        tags[tracking.OUTCOME] = "interrupted"
    else:
        status = "FINISHED" if best_run_id else "FAILED"
        tags[tracking.OUTCOME] = "finished" if best_run_id else "no_result"
    tracking.finish_run(uri, parent, status, tags)
    return SweepResult(
        experiment=settings.experiment,
        experiment_id=experiment_id,
        parent_run_id=parent,
        tracking_uri=uri,
        storage_path=path,
        best_trial_id=best_trial_id,
        best_run_id=best_run_id,
        best_config=best_config,
        best_value=best_value,
        outcomes=outcomes,
        interrupted=interrupted,
    )


def close_stale_trial_runs(
    uri: str, experiment_id: str, sweep: str, results: Any, epochs: int
) -> list[str]:
    """Close trial runs still RUNNING once the sweep has ended: a driver killed outright (SIGKILL,
    lost head) cannot close them, and a resumed sweep may not run those trials again. A run
    whose trial Tune reports gets that trial's outcome (finished, stopped_early or error); one
    Tune does not know (started after its last snapshot) is KILLED with `madn.outcome=lost`.
    Returns the closed run ids."""
    final = {}
    for result in results:
        trial_id = (result.metrics or {}).get("trial_id")
        if trial_id:
            final[str(trial_id)] = result
    closed = []
    for run in tracking.trial_runs(uri, experiment_id, sweep):
        if run.info.status != "RUNNING":
            continue
        result = final.get(run.data.tags.get(tracking.TRIAL_ID, ""))
        if result is None:
            status, tags = "KILLED", {tracking.OUTCOME: "lost"}
        elif result.error is not None:
            status, tags = "FAILED", {tracking.OUTCOME: "error"}
        else:
            done = int((result.metrics or {}).get("epoch", 0))
            status = "FINISHED"
            tags = {tracking.OUTCOME: "finished" if done >= epochs else "stopped_early"}
        tracking.finish_run(uri, run.info.run_id, status, tags)
        closed.append(run.info.run_id)
    return closed


def _drop_stale_counts(uri: str, parent: str, counts: dict[str, str]) -> None:
    """Remove `madn.trials_<outcome>` tags an interrupted run left that no longer apply (e.g.
    `madn.trials_running` once a resumed sweep has ended)."""
    client = tracking.client(uri)
    current = tracking.with_retries(client.get_run, parent).data.tags
    for key in current:
        if key.startswith("madn.trials_") and key not in counts:
            tracking.with_retries(client.delete_tag, parent, key)
