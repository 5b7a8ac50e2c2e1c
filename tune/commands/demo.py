"""`madn demo`: the main job end to end on embedded defaults."""

from __future__ import annotations

import argparse

from tune.commands.common import UsageError, positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the main job end to end on embedded defaults",
        description=(
            "Train a small MADN model on generated CT/MRI streak pairs with a progress bar, "
            "validate it against ground truth, and write a checkpoint, metrics and a sample grid. "
            "(The synthesize-ingest-sweep-promote-report demo replaces this as those parts land.)"
        ),
    )
    parser.add_argument(
        "--out", default="madn_work/demo", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=4, help="training epochs (default: %(default)s)"
    )
    parser.add_argument(
        "--size", type=positive_int, default=64, help="image side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--examples", type=positive_int, default=64, help="training pairs (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.streak_demo import run_streak_demo

    if args.size % 4:
        raise UsageError(f"--size must be divisible by 4, got {args.size}")
    summary = run_streak_demo(
        args.out, epochs=args.epochs, size=args.size, examples=args.examples, seed=args.seed
    )
    final, baseline = summary["final"], summary["no_mar"]
    print(f"trained {summary['steps']} steps in {summary['seconds']:.1f} s")
    for key in ("val/psnr_ct", "val/psnr_mri"):
        print(f"  {key}: corrected {final[key]:.2f} dB vs no MAR {baseline[key]:.2f} dB")
    print(f"checkpoint, metrics.json and samples.png in {summary['out_dir']}")
    return 0
