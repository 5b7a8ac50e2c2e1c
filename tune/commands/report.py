"""`madn report`: compare the similarity-loss variants of a sweep from MLflow."""

from __future__ import annotations

import argparse

from tune.commands.common import add_experiment_arguments


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report",
        help="compare similarity metrics of a sweep (Markdown + PNG, from MLflow)",
        description=(
            "Read the experiment's latest sweep from MLflow and write report.md, trials.csv, "
            "summary.csv and figures to --out (best/median objective per similarity metric "
            "beside the baselines, objective vs lambda_sim and sigma, parameter importances, "
            "the best trial's image grid); the report is also logged to the sweep run."
        ),
    )
    add_experiment_arguments(parser, "objective compared (default val/score)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--sweep-run", help="a sweep run id (default: the latest)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tune.report import build_report

    path = build_report(
        args.experiment, args.out, args.tracking_uri, args.metric, args.mode, args.sweep_run
    )
    print(f"report: {path}")
    return 0
