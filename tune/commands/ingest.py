"""`madn ingest`: volumes listed in a manifest -> a cached Parquet slice-shard dataset."""

from __future__ import annotations

import argparse
import sys

from madn_core.config import CT_PRIORS
from tune.commands.common import positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ingest",
        help="register, resample and cache CT/MRI volumes as Parquet slice shards",
        description=(
            "Read the CT/MRI volumes of a manifest (NIfTI or DICOM folders), register CT to MRI, "
            "resample, map intensities and write CACHE/<key>/ (Parquet shards + dataset.json). "
            "The key hashes the input contents and the settings: an unchanged re-run is a cache "
            "hit that prints the existing folder. Prints the dataset folder on the last line."
        ),
    )
    parser.add_argument("--manifest", required=True, help="manifest CSV (see `madn synth`)")
    parser.add_argument("--out", required=True, help="cache folder; the dataset is OUT/<key>")
    parser.add_argument(
        "--size", type=positive_int, default=256, help="slice side in pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--spacing",
        help="target spacing in mm: one value or x,y,z (default: the MRI's, coarsened to fit)",
    )
    parser.add_argument(
        "--register",
        choices=("none", "rigid", "bspline"),
        default="rigid",
        help="CT-to-MRI registration (default: %(default)s; bspline = rigid then B-spline FFD)",
    )
    parser.add_argument(
        "--register-on-li",
        action="store_true",
        help="estimate the registration on a LI-MAR-corrected CT (the paper's protocol)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of subjects for validation (default: %(default)s)",
    )
    parser.add_argument(
        "--test-subjects",
        default="0.2",
        help="test subjects: a count (2), a share (0.2) or ids (a,b) (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (default: %(default)s)")
    parser.add_argument(
        "--ct-prior",
        choices=CT_PRIORS,
        default="none",
        help="also store the CT after this classical MAR (column ct_prior): models trained on "
        "the dataset then correct what it leaves, and madn correct runs it first; evaluation "
        "still measures against the raw CT (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="parallel subjects (default: %(default)s)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.data.ingest import IngestConfig, ingest, parse_spacing, training_warning
    from pipelines.data.registration import RegistrationConfig

    config = IngestConfig(
        size=args.size,
        spacing_mm=parse_spacing(args.spacing),
        registration=RegistrationConfig(mode=args.register),
        register_on_li=args.register_on_li,
        val_fraction=args.val_fraction,
        test_subjects=args.test_subjects,
        seed=args.seed,
        ct_prior=args.ct_prior,
    )
    result = ingest(args.manifest, args.out, config, workers=args.workers)
    counts = result.info["counts"]
    if result.cache_hit:
        print("cache hit: nothing to do")
    else:
        print(f"ingested in {result.info['ingest_seconds']:.1f} s")
    for split, c in counts.items():
        print(
            f"  {split}: {c['subjects']} subjects, "
            f"{c['metal']} slices with metal, {c['clean']} without"
        )
    warning = training_warning(counts)
    if warning:
        print(f"madn ingest: warning: {warning}", file=sys.stderr)
    print(result.path)
    return 0
