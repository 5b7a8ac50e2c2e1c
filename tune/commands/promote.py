"""`madn promote`: register a sweep's best model and move the `champion` alias if it wins."""

from __future__ import annotations

import argparse

from tune.commands.common import add_experiment_arguments


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "promote",
        help="register the best trial's model in the MLflow registry",
        description=(
            "Evaluate the best trial of the experiment's latest sweep (or --sweep, --run-id, "
            "--variant) on the test split, overall and per subject, log it as a servable MLflow "
            "pyfunc (HU slices of any size in, corrected HU out; see madn serve) and register a "
            "version with alias `challenger`. It becomes `champion` only if its "
            "test score beats No MAR (> 0 dB) and the current champion; otherwise the command "
            "says why and exits with status 3."
        ),
    )
    add_experiment_arguments(parser, "selection metric (val/...)")
    parser.add_argument("--model-name", required=True, help="registered model name")
    parser.add_argument("--data", help="dataset whose test split decides (default: the run's)")
    parser.add_argument("--sweep", help="consider this sweep's trials (default: the latest sweep)")
    parser.add_argument("--run-id", help="promote this run (a trial run with a checkpoint)")
    parser.add_argument(
        "--variant",
        choices=("adn-ct", "adn-mr", "multichannel", "madn"),
        help="consider only trials of this variant",
    )
    parser.add_argument(
        "--min-gain",
        type=float,
        default=0.0,
        help="dB over No MAR a champion must exceed on the test split (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


NOT_CROWNED = 3  # exit status when the version is registered as challenger only


def run(args: argparse.Namespace) -> int:
    from tune.registry import Choice, promote

    result = promote(
        args.experiment,
        args.model_name,
        args.metric,
        args.mode,
        args.tracking_uri,
        args.data,
        choice=Choice(
            sweep=args.sweep, run_id=args.run_id, variant=args.variant, min_gain_db=args.min_gain
        ),
    )
    before = "none" if result.champion_score is None else f"{result.champion_score:.4f}"
    print(
        f"{result.model_uri}: {result.test_metric} = {result.challenger_score:.4f} "
        f"(champion before: {before}; paired p = {result.p_value:.3g} over "
        f"{result.test_subjects} test subjects); alias challenger"
        + (", champion" if result.promoted else "; champion unchanged")
    )
    if not result.promoted:
        print(f"not promoted: {result.reason}")
        return NOT_CROWNED
    return 0
