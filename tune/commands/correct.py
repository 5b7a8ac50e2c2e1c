"""`madn correct`: apply a trained model to whole CT (and MRI) volumes."""

from __future__ import annotations

import argparse

from tune.commands.common import positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "correct",
        help="correct CT/MRI volumes with a trained model",
        description=(
            "Apply a trained model to NIfTI/DICOM volumes of any size, spacing or slice count "
            "and write OUT/ct_corrected.nii.gz (HU) and/or OUT/mri_corrected.nii.gz with the "
            "inputs' geometry. Slices are resampled to the pixel spacing the model was trained "
            "at and corrected whole; slices without metal (CT > 2500 HU) are left unchanged "
            "unless --all-slices. adn-ct takes --ct, adn-mr --mri, multichannel and madn both "
            "(the MRI registered to the CT)."
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
    parser.add_argument("--out", required=True, help="output folder")
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
    from pipelines.inference.correct import correct_volume
    from tune.model_source import load_model_source

    model = load_model_source(args.model, resolve_device(args.device), args.tracking_uri)
    result = correct_volume(
        model,
        args.ct,
        args.out,
        mri=args.mri,
        device=args.device,
        batch_size=args.batch_size,
        all_slices=args.all_slices,
    )
    print(f"corrected {result.corrected} of {result.slices} slices (the others have no metal)")
    for name, path in result.outputs.items():
        print(f"{name}: {path}")
    return 0
