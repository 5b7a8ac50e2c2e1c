"""The `madn` command line.

Every command exits non-zero with a one-line reason on bad input (`madn <command>: error: ...`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import madn_core
from madn_core.checkpoint import CheckpointError
from tune.commands import correct, ingest, train
from tune.commands.common import UsageError, positive_int

Handler = Callable[[argparse.Namespace], int]


_positive = positive_int


def _add_demo(commands: argparse._SubParsersAction) -> None:
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
        "--epochs", type=_positive, default=4, help="training epochs (default: %(default)s)"
    )
    parser.add_argument(
        "--size", type=_positive, default=64, help="image side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--examples", type=_positive, default=64, help="training pairs (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
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


def _add_synth(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "synth",
        help="generate paired hip CT/MRI volumes with physics-based metal artefacts",
        description=(
            "Write NIfTI volumes (ct, mri, labels, metal_mask, ct_clean, mri_clean) per subject "
            "and "
            "DIR/manifest.csv, the input of `madn ingest`."
        ),
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--subjects", type=int, default=4, help="number of subjects (default: %(default)s)"
    )
    parser.add_argument(
        "--metal-fraction", type=float, default=0.5, help="fraction with an implant, 0..1"
    )
    parser.add_argument(
        "--size", type=int, default=256, help="in-plane pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--slices", type=int, default=32, help="axial slices (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--workers", type=_positive, default=1, help="parallel subjects (default: %(default)s)"
    )
    parser.add_argument("--figure", help="also write a PNG grid of a few subjects to this path")
    parser.set_defaults(handler=_run_synth)


def _run_synth(args: argparse.Namespace) -> int:
    from pipelines.synth.figure import synth_figure
    from pipelines.synth.generate import SynthConfig, synthesize

    config = SynthConfig(
        subjects=args.subjects,
        metal_fraction=args.metal_fraction,
        size=args.size,
        slices=args.slices,
        seed=args.seed,
    )
    manifest = synthesize(config, args.out, workers=args.workers)
    print(f"wrote {config.subjects} subjects and {manifest}")
    if args.figure:
        print(f"figure: {synth_figure(manifest, args.figure)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="madn",
        description="Unsupervised multimodal (CT + MRI) metal artefact reduction.",
    )
    parser.add_argument("--version", action="version", version=f"madn {madn_core.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_demo(commands)
    _add_synth(commands)
    ingest.add(commands)
    train.add(commands)
    correct.add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (
        UsageError,
        madn_core.ConfigError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        CheckpointError,
    ) as error:
        print(f"madn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
