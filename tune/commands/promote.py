"""`madn promote`: register a sweep's best model and move the `champion` alias if it wins."""

from __future__ import annotations

import argparse

from tune.commands.common import add_experiment_arguments


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "promote",
        help="register the best trial's model in the MLflow registry",
        description=(
            "Evaluate the best trial of the experiment's latest sweep on the test split, log it "
            "with mlflow.pytorch, register a version with alias `challenger`, and move "
            "`champion` to it only if it beats the current champion on the same test metric."
        ),
    )
    add_experiment_arguments(parser, "selection metric (val/...)")
    parser.add_argument("--model-name", required=True, help="registered model name")
    parser.add_argument("--data", help="dataset whose test split decides (default: the sweep's)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tune.registry import promote

    result = promote(
        args.experiment, args.model_name, args.metric, args.mode, args.tracking_uri, args.data
    )
    before = "none" if result.champion_score is None else f"{result.champion_score:.4f}"
    print(
        f"{result.model_uri}: {result.test_metric} = {result.challenger_score:.4f} "
        f"(champion before: {before}); alias challenger"
        + (", champion" if result.promoted else "; champion unchanged")
    )
    return 0
