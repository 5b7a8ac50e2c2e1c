"""`madn sweep`: the hyperparameter search service (Ray Tune + Optuna + ASHA, MLflow)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from tune.commands.common import positive_int, settings_from_file_and_flags


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "sweep",
        help="search lambda_sim, sigma and the similarity metric with Ray Tune",
        description=(
            "Ray Tune trials (Optuna TPE, ASHA early stopping) over the similarity metric "
            "(lncc, cc, nmi), lambda_sim and the LNCC sigma, plus fixed baseline trials "
            "(multichannel ADN by default). Every trial is a nested MLflow run; the sweep is the "
            "parent run. Without --address a local Ray runtime is started; without "
            "--tracking-uri MLflow uses sqlite:///mlflow.db in the current folder. --config "
            "takes a YAML file with the same keys (underscored) plus `space:`, `baselines:` "
            "and `model:` (madn train settings shared by all trials); flags win."
        ),
    )
    parser.add_argument("--data", help="dataset folder or URI (CACHE/<key>)")
    parser.add_argument("--trials", type=int, help="searched trials, baselines extra (default 8)")
    parser.add_argument("--max-concurrent", type=positive_int, help="default 2")
    parser.add_argument("--gpus-per-trial", type=float, help="e.g. 0.25: 4 trials per GPU")
    parser.add_argument("--cpus-per-trial", type=float, help="default 1")
    parser.add_argument(
        "--pending-timeout",
        type=float,
        help="seconds a trial may wait for resources while none runs (default 300)",
    )
    parser.add_argument(
        "--autoscaling",
        action="store_true",
        default=None,
        help="the cluster can add nodes: do not refuse trial resources no node has yet",
    )
    parser.add_argument("--epochs", type=positive_int, help="epochs per trial (ASHA max_t)")
    parser.add_argument("--metric", help="objective (default val/score)")
    parser.add_argument("--mode", choices=("max", "min"), help="default max")
    parser.add_argument("--experiment", help="MLflow experiment = sweep name (default madn-sweep)")
    parser.add_argument("--name", help="sweep name (default: the experiment name)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///mlflow.db)")
    parser.add_argument("--storage", help="Tune storage path or URI (default runs/ray)")
    parser.add_argument("--address", help="Ray cluster: auto or ray://host:10001")
    parser.add_argument("--resume", action="store_true", default=None, help="continue the sweep")
    parser.add_argument("--seed", type=int, help="Optuna seed (default 0)")
    parser.add_argument("--max-failures", type=int, help="retries per trial (default 1)")
    parser.add_argument("--grace-period", type=positive_int, help="ASHA grace period (epochs)")
    parser.add_argument("--base-channels", type=positive_int, help="network width of all trials")
    parser.add_argument("--num-res", type=positive_int, help="residual blocks of all trials")
    parser.add_argument("--batch-size", type=positive_int, help="batch size of all trials")
    parser.add_argument("--lr", type=float, help="learning rate of all trials")
    parser.add_argument("--config", help="sweep YAML file (see description)")
    parser.set_defaults(handler=run)


MODEL_FLAGS = ("base_channels", "num_res", "batch_size", "lr")


def resolve_settings(args: argparse.Namespace) -> Any:
    from tune.sweep import SweepSettings

    known = {f.name for f in fields(SweepSettings)}
    flags = known - {"model", "space", "baselines", "workdir", "verbose"}
    values = settings_from_file_and_flags(args, known, flags)
    model = dict(values.get("model") or {})
    for flag in MODEL_FLAGS:
        if getattr(args, flag) is not None:
            model[flag] = getattr(args, flag)
    values["model"] = model
    return SweepSettings(**values)


def run(args: argparse.Namespace) -> int:
    from pipelines.data.locations import redact
    from tune.sweep import run_sweep

    settings = resolve_settings(args)
    result = run_sweep(settings)
    print(f"trials: {result.outcomes}")
    if result.interrupted:
        print(
            f"madn sweep: interrupted; the sweep state is saved in {redact(result.storage_path)}. "
            "Continue it with the same command plus --resume.",
            file=sys.stderr,
        )
        return 130
    if result.best_run_id:
        print(
            f"best: {result.best_config} {result.best_value:.4f} (MLflow run {result.best_run_id})"
        )
    print(f"MLflow: {redact(result.tracking_uri)}, experiment {result.experiment!r}")
    print(f"storage: {redact(result.storage_path)}")
    return 0 if result.best_run_id else 1
