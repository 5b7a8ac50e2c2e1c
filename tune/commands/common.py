"""Helpers shared by the `madn` subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from madn_core.config import CHANNEL_NAMES


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def channel_list(text: str) -> list[str]:
    """argparse type: comma-separated image channel names (ct, mri), e.g. "mri" or "ct,mri"."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in CHANNEL_NAMES for name in names):
        raise argparse.ArgumentTypeError(f"must be ct, mri or ct,mri, got {text!r}")
    return names


def settings_from_file_and_flags(
    args: argparse.Namespace, known: Iterable[str], flags: Iterable[str]
) -> dict[str, Any]:
    """The --config file's settings (keys must be in `known`) overridden by the `flags` given
    on the command line; --data is required in one or the other."""
    from pipelines.training.train import load_train_config

    known = set(known)
    settings: dict[str, Any] = load_train_config(args.config) if args.config else {}
    unknown = set(settings) - known
    if unknown:
        raise UsageError(
            f"{args.config}: unknown setting(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(sorted(known))}"
        )
    for name in flags:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    if not settings.get("data"):
        raise UsageError("--data is required (the folder `madn ingest` printed)")
    return settings


def add_experiment_arguments(parser: argparse.ArgumentParser, metric_help: str) -> None:
    """--experiment, --metric, --mode and --tracking-uri: how the commands that read a sweep
    back from MLflow (promote, report) find it and rank its trials."""
    parser.add_argument("--experiment", required=True, help="MLflow experiment (sweep name)")
    parser.add_argument("--metric", default="val/score", help=metric_help)
    parser.add_argument("--mode", choices=("max", "min"), default="max")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///mlflow.db)")
