"""`madn train`: train one variant on an ingested dataset, with validation every epoch."""

from __future__ import annotations

import argparse
from typing import Any

from tune.commands.common import channel_list, positive_int, settings_from_file_and_flags
from tune.tracking import madn_home
from tune.train_settings import CONFIG_KEYS, RECIPE_STEPS, build_config

FILE_ONLY_KEYS = {
    "data",
    "variant",
    "out",
    "resume",
    "model",
    "recipe",
    "experiment",
    "tracking_uri",
}


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train one model variant on an ingested dataset",
        description=(
            "Train adn-ct, adn-mr, multichannel or madn on CACHE/<key> (from `madn ingest`), "
            "validating every epoch (--val-every N: every N-th). Writes config.json, last.ckpt, "
            "best.ckpt, metrics.jsonl and samples.png to --out; --resume continues exactly from "
            "last.ckpt. Settings may come from --config FILE.yaml with the same keys as the "
            "flags (underscores; a `model` "
            "mapping takes any other MADNConfig field); flags win. With --experiment (or "
            "--tracking-uri) the training is an MLflow run: params, per-epoch metrics and "
            "sample images, the dataset, and the checkpoints, which `madn promote --run-id` "
            "can promote."
        ),
    )
    parser.add_argument("--data", help="dataset folder or URI (CACHE/<key>)")
    parser.add_argument(
        "--variant", choices=("adn-ct", "adn-mr", "multichannel", "madn"), help="default: madn"
    )
    parser.add_argument(
        "--recipe",
        choices=("quality", "paper"),
        help="starting settings: quality (default; the measured recipe of docs/model.md, "
        f"about {RECIPE_STEPS} steps) or paper (ADN/MADN as published); flags override it",
    )
    _add_model_arguments(parser)
    _add_training_arguments(parser)
    _add_run_arguments(parser)
    parser.set_defaults(handler=run)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The objective's and the network's flags (madn_core config keys)."""
    parser.add_argument("--similarity", choices=("lncc", "cc", "nmi"), help="madn only")
    parser.add_argument(
        "--lambda-sim", type=float, help="similarity loss weight (quality 0.1, paper 1)"
    )
    parser.add_argument(
        "--full-cycle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the self-synthesis term of the full cycle (eq. 7); default: on for madn only. "
        "Without it madn lost 0.07-0.21 dB of MRI near the implant (docs/model.md, ablation 16)",
    )
    parser.add_argument("--sigma", type=float, help="LNCC Gaussian std in pixels (default 5)")
    parser.add_argument("--base-channels", type=positive_int, help="width (quality 16, paper 64)")
    parser.add_argument("--num-res", type=positive_int, help="residual blocks (quality 2, paper 4)")
    parser.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="G_I adds a correction to every channel of its input, starting as the identity "
        "(quality recipe: the MRI only, see --residual-channels; paper: off; --no-residual: "
        "ADN's synthesis on every channel). For a two-channel model on a dataset from `madn "
        "ingest --ct-prior nmar`: the CT stays NMAR's and the MRI is corrected (docs/model.md, "
        "ablation 17)",
    )
    parser.add_argument(
        "--residual-channels",
        type=channel_list,
        help="the channels G_I corrects residually, comma-separated (ct, mri); implies "
        "--residual. mri: the CT keeps ADN's synthesis and the MRI starts as the identity "
        "(docs/model.md, ablation 18)",
    )


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The training loop's flags: steps, optimiser, crops, EMA, validation."""
    parser.add_argument(
        "--epochs", type=positive_int, help=f"default: {RECIPE_STEPS} steps (quality), 1 (paper)"
    )
    parser.add_argument("--batch-size", type=positive_int, help="default 4")
    parser.add_argument("--lr", type=float, help="Adam learning rate (quality 2e-4, paper 1e-5)")
    parser.add_argument(
        "--patch",
        type=int,
        help="train on random N px crops at the data's native spacing (default: whole slices)",
    )
    parser.add_argument(
        "--patch-focus",
        type=float,
        help="with --patch: fraction of metal slices cropped around the implant, each clean "
        "slice at the same place (quality 0.5; docs/model.md ablation 8)",
    )
    parser.add_argument(
        "--ema-decay", type=float, help="EMA of the generator weights for validation (default off)"
    )
    parser.add_argument(
        "--val-every",
        type=positive_int,
        help="validate every N epochs and after the last (default 1); best.ckpt is chosen "
        "among the validated epochs",
    )
    parser.add_argument("--seed", type=int, help="default 0")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto")
    parser.add_argument("--amp", action="store_true", default=None, help="bf16 autocast")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the run goes and how it is tracked."""
    parser.add_argument(
        "--out", help="run folder (default: runs/<variant>, under $MADN_HOME when set)"
    )
    parser.add_argument("--resume", action="store_true", default=None, help="continue --out")
    parser.add_argument("--config", help="YAML/JSON file of the same settings")
    parser.add_argument("--experiment", help="track the run in this MLflow experiment")
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default sqlite:///mlflow.db; implies tracking)"
    )


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """File settings overridden by the flags given on the command line."""
    keys = (*CONFIG_KEYS, *FILE_ONLY_KEYS)
    return settings_from_file_and_flags(args, keys, keys)


def default_epochs(dataset: Any, batch_size: int) -> int:
    """Epochs that make about RECIPE_STEPS generator steps on the dataset's train split."""
    per_epoch = max(1, len(dataset.select(split="train", has_metal=True)) // batch_size)
    return max(1, -(-RECIPE_STEPS // per_epoch))


def run(args: argparse.Namespace) -> int:
    from pipelines.data.dataset import SliceDataset
    from pipelines.training.train import train_model

    settings = resolve_settings(args)
    settings.setdefault("recipe", "quality")
    dataset = SliceDataset(settings["data"])
    config = build_config(settings, dataset.size)
    if settings["recipe"] == "quality" and "epochs" not in settings:
        settings["epochs"] = default_epochs(dataset, config.train.batch_size)
        config = build_config(settings, dataset.size)
        print(f"recipe quality: {settings['epochs']} epochs (about {RECIPE_STEPS} steps)")
    out = settings.get("out") or str(madn_home() / "runs" / config.variant)
    if settings.get("experiment") or settings.get("tracking_uri"):
        return _run_tracked(settings, dataset, config, out)
    result = train_model(dataset, config, out, resume=bool(settings.get("resume")))
    _print_result(result)
    return 0


def _run_tracked(settings: dict[str, Any], dataset: Any, config: Any, out: str) -> int:
    """Train inside an MLflow run (`tune.train_run`); print how to promote it."""
    from pathlib import Path

    from pipelines.training.train import train_model
    from tune.train_run import tracked_training

    experiment = settings.get("experiment") or "madn-train"
    resume = bool(settings.get("resume"))
    with tracked_training(
        experiment, settings.get("tracking_uri"), dataset, config, Path(out), settings
    ) as (uri, run_id, logger):
        result = train_model(dataset, config, out, resume=resume, callbacks=[logger])
    _print_result(result)
    print(f"MLflow run {run_id} in experiment {experiment!r} ({uri})")
    print(f"promote it: madn promote --experiment {experiment} --run-id {run_id}", end="")
    print(f" --tracking-uri {uri}" if settings.get("tracking_uri") else "")
    return 0


def _print_result(result: Any) -> None:
    last = result.history[-1] if result.history else {}
    shown = ("val/score", "val/psnr_ct", "val/nomar/psnr_ct", "val/sigma_ct", "val/nomar/sigma_ct")
    for key in shown:
        if key in last:
            print(f"  {key}: {last[key]:.3f}")
    print(f"run folder: {result.out_dir} (best.ckpt, last.ckpt, metrics.jsonl, samples.png)")
