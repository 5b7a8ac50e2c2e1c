"""`madn correct`: apply a trained model to whole CT (and MRI) volumes."""

from __future__ import annotations

import argparse

from tune.commands.common import UsageError, positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "correct",
        help="correct CT/MRI volumes with a trained model",
        description=(
            "Apply a trained model slice by slice to NIfTI/DICOM volumes of any size or spacing "
            "and write OUT/ct_corrected.nii.gz (HU) and/or OUT/mri_corrected.nii.gz with the "
            "inputs' geometry. adn-ct takes --ct, adn-mr --mri, multichannel and madn both "
            "(the MRI registered to the CT)."
        ),
    )
    parser.add_argument("--model", required=True, help="checkpoint (last.ckpt from madn train)")
    parser.add_argument("--ct", help="CT volume (NIfTI file or DICOM folder)")
    parser.add_argument("--mri", help="MRI volume registered to the CT")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="slices per batch")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipelines.infer import correct_volume

    if "://" in args.model or args.model.startswith(("models:/", "runs:/")):
        raise UsageError(
            f"--model {args.model}: MLflow model URIs are not supported yet; pass a checkpoint"
        )
    if not Path(args.model).is_file():
        raise FileNotFoundError(f"--model {args.model} does not exist")
    result = correct_volume(
        args.model, args.ct, args.out, mri=args.mri, device=args.device, batch_size=args.batch_size
    )
    for name, path in result.outputs.items():
        print(f"{name}: {path}")
    return 0
