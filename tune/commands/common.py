"""Helpers shared by the `madn` subcommands."""

from __future__ import annotations

import argparse


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


def add_experiment_arguments(parser: argparse.ArgumentParser, metric_help: str) -> None:
    """--experiment, --metric, --mode and --tracking-uri: how the commands that read a sweep
    back from MLflow (promote, report) find it and rank its trials."""
    parser.add_argument("--experiment", required=True, help="MLflow experiment (sweep name)")
    parser.add_argument("--metric", default="val/score", help=metric_help)
    parser.add_argument("--mode", choices=("max", "min"), default="max")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///mlflow.db)")
