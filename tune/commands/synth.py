"""`madn synth`: synthetic paired hip CT/MRI with physics-based metal artefacts."""

from __future__ import annotations

import argparse

from tune.commands.common import positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "synth",
        help="generate paired hip CT/MRI volumes with physics-based metal artefacts",
        description=(
            "Write NIfTI volumes (ct, mri, labels, metal_mask, ct_clean, mri_clean) per subject "
            "and DIR/manifest.csv, the input of `madn ingest`."
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
        "--bilateral-fraction",
        type=float,
        default=0.0,
        help="fraction of the implanted subjects with a prosthesis on both hips, 0..1 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--ct-geometry",
        choices=("fan", "parallel"),
        default="fan",
        help="CT acquisition: fan beam with an arc detector, 320 views (default) or parallel beam",
    )
    parser.add_argument(
        "--mri-contrast",
        choices=("t1", "t2"),
        default="t1",
        help="MRI weighting: T1 (fat bright, default) or T2/PD-like (fluid bright)",
    )
    parser.add_argument(
        "--size", type=int, default=256, help="in-plane pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--slices", type=int, default=32, help="axial slices (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="parallel subjects (default: %(default)s)"
    )
    parser.add_argument("--figure", help="also write a PNG grid of a few subjects to this path")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.synth.ct import ScanProtocol
    from pipelines.synth.figure import synth_figure
    from pipelines.synth.generate import SynthConfig, synthesize
    from pipelines.synth.mri import MRIProtocol

    config = SynthConfig(
        subjects=args.subjects,
        metal_fraction=args.metal_fraction,
        bilateral_fraction=args.bilateral_fraction,
        ct=ScanProtocol(geometry=args.ct_geometry),
        mri=MRIProtocol(contrast=args.mri_contrast),
        size=args.size,
        slices=args.slices,
        seed=args.seed,
    )
    manifest = synthesize(config, args.out, workers=args.workers)
    print(f"wrote {config.subjects} subjects and {manifest}")
    if args.figure:
        print(f"figure: {synth_figure(manifest, args.figure)}")
    return 0
