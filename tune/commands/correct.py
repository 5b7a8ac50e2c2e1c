"""`madn correct`: apply a trained model to whole CT (and MRI) volumes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tune.commands.common import UsageError, positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "correct",
        help="correct CT/MRI volumes with a trained model",
        description=(
            "Apply a trained model to NIfTI/DICOM volumes of any size, spacing or slice count. "
            "One case: --ct/--mri and --out write OUT/ct_corrected.nii.gz (HU) and/or "
            "OUT/mri_corrected.nii.gz. A folder of cases, as nnU-Net names them: -i IN -o OUT "
            "reads IN/CASE_0000.nii.gz (CT) and IN/CASE_0001.nii.gz (MRI), or one DICOM folder "
            "per case, and writes the same names to OUT. Outputs keep the inputs' geometry. "
            "Slices are resampled to the pixel spacing the model was trained at and corrected "
            "whole; slices without metal (CT > 2500 HU) are left unchanged unless --all-slices. "
            "adn-ct takes the CT, adn-mr the MRI, multichannel and madn both (the MRI "
            "registered to the CT, or --register rigid|bspline)."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        help="checkpoint (last.ckpt from madn train) or MLflow URI (models:/NAME@champion, "
        "models:/NAME/VERSION, runs:/RUN_ID/model)",
    )
    parser.add_argument("--ct", help="CT volume (NIfTI file or DICOM folder)")
    parser.add_argument("--mri", help="MRI volume registered to the CT")
    parser.add_argument("--out", help="output folder (one case)")
    parser.add_argument(
        "--metal-mask",
        help="the implant's voxels (label volume on the CT's grid, nonzero = metal; one case), "
        "used instead of segmenting them from the CT (each region above 2500 HU down to its "
        "half-maximum edge). It also chooses the slices with metal",
    )
    parser.add_argument("-i", "--input", help="folder of cases (CASE_0000.nii.gz, ...)")
    parser.add_argument("-o", "--output", help="folder for the corrected cases (same names)")
    parser.add_argument(
        "--register",
        choices=("none", "rigid", "bspline"),
        default="none",
        help="register the MRI to the CT first (default none: it is registered already)",
    )
    parser.add_argument(
        "--continue",
        dest="skip_done",
        action="store_true",
        help="skip cases whose outputs exist (-i/-o)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="slices per batch")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for models:/ and runs:/")
    parser.add_argument(
        "--all-slices",
        action="store_true",
        help="also correct slices without metal (default: leave them unchanged)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from madn_core.trainer import resolve_device
    from tune.model_source import load_model_source

    folder_mode = args.input is not None or args.output is not None
    if folder_mode and (args.ct or args.mri or args.out):
        raise UsageError("use either -i/-o (a folder of cases) or --ct/--mri/--out (one case)")
    if folder_mode and not (args.input and args.output):
        raise UsageError("-i IN and -o OUT go together")
    if not folder_mode and not args.out:
        raise UsageError("--out is required (or -i IN -o OUT for a folder of cases)")
    if folder_mode and args.metal_mask:
        raise UsageError("--metal-mask is for one case (--ct/--out), not -i/-o")
    model = load_model_source(args.model, resolve_device(args.device), args.tracking_uri)
    options = {"device": args.device, "batch_size": args.batch_size, "all_slices": args.all_slices}
    if folder_mode:
        return _run_folder(args, model, options)
    return _run_case(args, model, options)


def _run_case(args: argparse.Namespace, model: Any, options: dict[str, Any]) -> int:
    from pipelines.data.registration import RegistrationConfig, align_mri_to_ct
    from pipelines.data.volumes import read_volume
    from pipelines.inference.correct import correct_volume

    mri: Any = args.mri
    if args.mri and args.ct and args.register != "none":
        ct_image = read_volume(args.ct, "ct volume")
        config = RegistrationConfig(mode=args.register)
        mri = align_mri_to_ct(ct_image, read_volume(args.mri, "mri volume"), config)
    result = correct_volume(
        model, args.ct, args.out, mri=mri, metal_mask=args.metal_mask, **options
    )
    print(f"corrected {result.corrected} of {result.slices} slices (the others have no metal)")
    for name, path in result.outputs.items():
        print(f"{name}: {path}")
    return 0


def _run_folder(args: argparse.Namespace, model: Any, options: dict[str, Any]) -> int:
    from pipelines.inference.folder import correct_folder

    result = correct_folder(
        model, args.input, args.output, args.register, args.skip_done, **options
    )
    for case, reason in result.failed.items():
        line = reason if reason.startswith(f"case {case}") else f"case {case}: {reason}"
        print(f"madn correct: error: {line}", file=sys.stderr)
    print(
        f"{len(result.corrected)} cases corrected, {len(result.skipped)} skipped (done), "
        f"{len(result.failed)} failed; outputs in {args.output}"
    )
    return 1 if result.failed else 0
