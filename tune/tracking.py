"""MLflow tracking for sweeps: where the store is, retries, and the run layout of docs/sweep.md.

Layout: one experiment per sweep name; a parent run per sweep (tag `madn.role=sweep`,
`madn.sweep=<name>`) and one nested run per Ray Tune trial (tag `madn.role=trial`,
`madn.trial_id=<Tune trial id>`, `mlflow.parentRunId`). A trial's run is found by its trial id
before one is created, so retries and resumed sweeps never duplicate it.

Embedded default: `sqlite:///<workdir>/mlflow.db` with artifacts in `<workdir>/mlartifacts`;
the workdir is the current folder, or `$MADN_HOME` when that is set (`madn_home`)
(the store and the experiment are created in the driver before any trial starts: concurrent
trials racing to create a new sqlite schema was seen to kill a trial). On a cluster pass an
`http(s)://` tracking server; artifacts then go through the server.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tune.errors import ServiceError

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
ROLE = "madn.role"
SWEEP = "madn.sweep"
TRIAL_ID = "madn.trial_id"
OUTCOME = "madn.outcome"
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"

T = TypeVar("T")

EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3 UI: which page an experiment opens on
EXPERIMENT_DESCRIPTION = (
    "madn sweeps: one parent run per sweep (madn.role=sweep) with its settings, search space and "
    "report; one nested run per trial (madn.role=trial) with its metrics per epoch, sample "
    "grids and checkpoint. val/score is the mean PSNR gain in dB over No MAR on the validation "
    "split: 0 means no better than not correcting, below 0 worse. madn.outcome says how a trial "
    "ended (finished, stopped_early by ASHA, error, lost)."
)


class TrackingError(ServiceError):
    """The tracking store cannot be used; the message says which and why."""


def madn_home(default: str | os.PathLike[str] = ".") -> Path:
    """Where default stores and outputs go: `$MADN_HOME` when set (created on first write),
    else `default` (the current folder)."""
    home = os.environ.get("MADN_HOME", "").strip()
    return Path(home).expanduser() if home else Path(default)


def resolve_tracking_uri(uri: str | None = None, workdir: str | os.PathLike[str] = ".") -> str:
    """`uri`, else $MLFLOW_TRACKING_URI, else the embedded sqlite store in `workdir` (the
    default "." meaning `madn_home()`); a relative sqlite path is made absolute (trials run in
    other working folders)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri:
        folder = madn_home() if str(workdir) == "." else Path(workdir)
        return f"sqlite:///{(folder / DEFAULT_DB).resolve()}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///') :]).resolve()}"
    if "://" not in uri:  # a bare folder: MLflow's file store is deprecated, use sqlite in it
        return f"sqlite:///{(Path(uri) / DEFAULT_DB).resolve()}"
    return uri


def connect(
    uri: str | None = None, workdir: str | os.PathLike[str] = ".", create: bool = True
) -> str:
    """The resolved tracking URI (`resolve_tracking_uri`), ready to use: a tracking server must
    answer within seconds (else a one-line TrackingError at once, not MLflow's minutes of
    back-off); an embedded sqlite store is created or upgraded under a file lock beside it, so
    that several processes may open one new store at the same moment. `create=False` (commands
    that only read, e.g. promote and report): a missing sqlite file is a TrackingError."""
    resolved = resolve_tracking_uri(uri, workdir)
    if resolved.startswith(("http://", "https://")):
        check_server(resolved)
    elif resolved.startswith("sqlite:///"):
        database = Path(resolved[len("sqlite:///") :])
        if not create and not database.is_file():
            raise TrackingError(
                f"no MLflow store at {database}: run `madn sweep` first, or pass --tracking-uri"
            )
        prepare_sqlite_store(resolved)
    return resolved


def check_server(uri: str, timeout_s: float = 5.0) -> None:
    """A one-line TrackingError unless the MLflow server at `uri` answers HTTP within
    `timeout_s` seconds (any status counts as an answer: an auth proxy may return 401)."""
    import urllib.error
    import urllib.request

    from pipelines.data.locations import redact

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise TrackingError(
            f"MLflow tracking server {redact(uri)} is unreachable ({reason}); start it or fix "
            "--tracking-uri / MLFLOW_TRACKING_URI"
        ) from None


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on `<db>.lock` beside an embedded sqlite store for the block (no-op
    for other stores): MLflow creates its tables and default experiment on first use, and two
    processes doing that at once fail with "table experiments already exists"."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    database = Path(uri[len("sqlite:///") :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare_sqlite_store(uri: str) -> None:
    """Create (or upgrade) the sqlite store at `uri` under `store_lock`."""
    with store_lock(uri):
        tracking = client(uri)
        with_retries(tracking.search_experiments, max_results=1)
        with_retries(tracking.search_registered_models, max_results=1)


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:"))


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a local sqlite store; None (the server's
    choice) for a tracking server."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / DEFAULT_ARTIFACTS).resolve().as_uri()
    return None


def _transient(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}".lower()
    if isinstance(error, (ConnectionError, TimeoutError, sqlite3.OperationalError)):
        return True
    markers = ("database is locked", "connection", "timed out", "temporarily", "503", "502")
    return any(marker in text for marker in markers)


def with_retries(
    call: Callable[..., T],
    *args: Any,
    attempts: int = 8,
    first_delay_s: float = 0.5,
    **kwargs: Any,
) -> T:
    """Run an MLflow call, retrying transient failures (a locked sqlite file, a tracking server
    that is briefly unreachable) with exponential back-off: 8 attempts span about a minute."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return call(*args, **kwargs)
        except Exception as error:
            if attempt == attempts or not _transient(error):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """Few HTTP retries and a short timeout, for a reachability check."""
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "5"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def fluent_uri(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (`mlflow.start_run`, `mlflow.pytorch.load_model`, ...) at `uri`
    for the block only. `mlflow.set_tracking_uri` also sets the MLFLOW_TRACKING_URI environment
    variable, which would otherwise leak into every later call of the process."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # None unsets the variable again


def client(uri: str) -> Any:
    """An MlflowClient for `uri`."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_experiment(uri: str, name: str) -> str:
    """Create the store (if local) and the experiment `name` if missing; its id. Safe when
    several processes do it at once. A tracking server that does not answer gives a one-line
    TrackingError before anything starts."""
    if uri.startswith("http"):
        check_server(uri)
    try:
        with store_lock(uri):
            experiment = _get_or_create_experiment(uri, name)
    except TrackingError:
        raise
    except Exception as error:
        raise TrackingError(f"MLflow store {uri} cannot be used: {error}") from None
    if experiment.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow experiment {name!r} is deleted in {uri}: restore it or choose another name"
        )
    return str(experiment.experiment_id)


def _get_or_create_experiment(uri: str, name: str) -> Any:
    """The experiment `name`, created if missing; one created by another process in between
    (a tracking server has no lock) is taken as found."""
    tracking = client(uri)
    with _quick_http() if uri.startswith("http") else contextlib.nullcontext():
        experiment = with_retries(tracking.get_experiment_by_name, name)
        if experiment is None:
            try:
                tracking.create_experiment(
                    name,
                    artifact_location=artifact_location(uri),
                    tags={
                        "mlflow.note.content": EXPERIMENT_DESCRIPTION,
                        # MLflow 3's UI opens "Training runs", not its GenAI overview
                        EXPERIMENT_KIND: "custom_model_development",
                    },
                )
            except Exception:
                if with_retries(tracking.get_experiment_by_name, name) is None:
                    raise
            experiment = with_retries(tracking.get_experiment_by_name, name)
    return experiment


def find_runs(uri: str, experiment_id: str, tags: Mapping[str, str]) -> list[Any]:
    """Runs of the experiment whose tags equal `tags`, newest first."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return with_retries(
        client(uri).search_runs,
        [experiment_id],
        filter_string=query,
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )


def trial_runs(uri: str, experiment_id: str, sweep: str) -> list[Any]:
    """The trial runs of sweep `sweep`, newest first."""
    return find_runs(uri, experiment_id, {ROLE: "trial", SWEEP: sweep})


def latest_sweep_run(uri: str, experiment: str) -> tuple[str, Any]:
    """(experiment id, the newest sweep run) of the experiment named `experiment`; a
    TrackingError when there is no such experiment or it holds no sweep."""
    found = with_retries(client(uri).get_experiment_by_name, experiment)
    if found is None:
        raise TrackingError(f"no MLflow experiment {experiment!r} in {uri}")
    sweeps = find_runs(uri, found.experiment_id, {ROLE: "sweep"})
    if not sweeps:
        raise TrackingError(f"experiment {experiment!r} has no sweep run")
    return found.experiment_id, sweeps[0]


def start_sweep_run(uri: str, experiment_id: str, sweep: str, resume: bool) -> str:
    """The parent run of sweep `sweep`: the existing one when resuming, else a new one."""
    if resume:
        existing = find_runs(uri, experiment_id, {ROLE: "sweep", SWEEP: sweep})
        if existing:
            run_id = existing[0].info.run_id
            with_retries(client(uri).update_run, run_id, status="RUNNING")
            return run_id
    run = with_retries(
        client(uri).create_run,
        experiment_id,
        run_name=sweep,
        tags={ROLE: "sweep", SWEEP: sweep},
    )
    return run.info.run_id


def trial_run_name(params: Mapping[str, Any], trial_id: str) -> str:
    """A run name that says what the trial is, e.g. "madn lncc lambda_sim=0.443 sigma=6.15
    [6aedda8f]" or "multichannel [2e73c289]" (MLflow's table shows it first)."""
    parts = [str(params.get("variant", "madn"))]
    if "similarity" in params:
        parts.append(str(params["similarity"]))
    for key in ("lambda_sim", "sigma", "lr", "base_channels", "num_res", "batch_size"):
        if key in params:
            value = params[key]
            parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts) + f" [{trial_id}]"


def trial_run(
    uri: str,
    experiment_id: str,
    parent_run_id: str,
    sweep: str,
    trial_id: str,
    trial_name: str,
    params: Mapping[str, Any],
) -> str:
    """The nested run of a trial: found by its trial id, else created with its parameters."""
    existing = find_runs(uri, experiment_id, {TRIAL_ID: trial_id, SWEEP: sweep})
    if existing:
        return existing[0].info.run_id
    tracking = client(uri)
    run = with_retries(
        tracking.create_run,
        experiment_id,
        run_name=trial_name,
        tags={ROLE: "trial", SWEEP: sweep, TRIAL_ID: trial_id, PARENT: parent_run_id},
    )
    log_params(uri, run.info.run_id, params)
    return run.info.run_id


def log_params(uri: str, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(str(k), str(v)) for k, v in params.items()]
    for start in range(0, len(items), 100):
        with_retries(client(uri).log_batch, run_id, params=items[start : start + 100])


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    """Log finite metrics at `step` in one batch (retried)."""
    import math

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(k, float(v), now, step)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and math.isfinite(v)
    ]
    if items:
        with_retries(client(uri).log_batch, run_id, metrics=items)


def finish_run(uri: str, run_id: str, status: str, tags: Mapping[str, str] = {}) -> None:
    """Set tags, then the terminal status (FINISHED, KILLED or FAILED)."""
    tracking = client(uri)
    for key, value in tags.items():
        with_retries(tracking.set_tag, run_id, key, value)
    with_retries(tracking.set_terminated, run_id, status)


def provenance_tags(dataset: Any) -> dict[str, str]:
    """Tags that say what a run ran on: the dataset (content key, location, image size) and
    the code (madn version; git commit of this checkout, when it is one, which MLflow shows as
    the source)."""
    import subprocess

    import madn_core
    from pipelines.data.locations import redact

    tags = {
        "madn.dataset_key": str(dataset.info.get("key", "")),
        "madn.dataset": redact(dataset.location),
        "madn.image_size": str(dataset.size),
        "madn.version": madn_core.__version__,
    }
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def log_dataset_input(uri: str, run_id: str, dataset: Any) -> None:
    """Log the ingested dataset as the run's MLflow dataset input (name: its content key,
    source: its location, context "training"), so the UI's Datasets column shows it."""
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    from pipelines.data.locations import redact

    key = str(dataset.info.get("key", "")) or "dataset"
    source = HTTPDatasetSource(url=redact(dataset.location))
    entity = MetaDataset(source=source, name=key, digest=key[:36])._to_mlflow_entity()
    with_retries(
        client(uri).log_inputs,
        run_id,
        datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])],
    )


def log_sample_grid(uri: str, run_id: str, png: Path, step: int) -> None:
    """Log the sample grid `png` with `log_image` under key "samples" at `step` (the UI's
    image step slider)."""
    from PIL import Image

    with Image.open(png) as image:
        pixels = image.convert("RGB")
        with_retries(client(uri).log_image, run_id, pixels, key="samples", step=step)
