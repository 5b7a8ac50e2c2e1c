"""`madn evaluate`: the paper's evaluation protocol for trained models and classical baselines."""

from __future__ import annotations

import argparse

from tune.commands.common import UsageError, positive_int


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="evaluate models and LI/NMAR on the test subjects (sigma_CT, Dice, PSNR/SSIM)",
        description=(
            "Run No MAR, LI, NMAR and each --model on the implanted test subjects of an "
            "ingested dataset: sigma_CT per muscle and side, MRI segmentation propagation "
            "(B-spline FFD, Dice per muscle), PSNR/SSIM against synthetic ground truth, paired "
            "two-tailed t-tests against MADN. Writes Markdown and CSV tables, box plots, a "
            "comparison grid and report.md to --out."
        ),
    )
    parser.add_argument("--data", required=True, help="dataset folder or URI (CACHE/<key>)")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[LABEL=]MODEL",
        help="checkpoint or MLflow model URI (models:/NAME@alias, runs:/ID/model); repeat for "
        "several; LABEL names its column (default: the variant, e.g. MADN)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument(
        "--baselines",
        default="li,nmar",
        help="comma-separated classical baselines from li, nmar, or 'none' (default li,nmar)",
    )
    parser.add_argument("--no-dice", action="store_true", help="skip MRI label propagation")
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="registration processes (default 2)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for models:/ and runs:/")
    parser.set_defaults(handler=run)


def parse_model_specs(specs: list[str]) -> list[tuple[str, str]]:
    """`[LABEL=]SOURCE` -> (label or "", source); URIs keep their own '=' free form."""
    parsed = []
    for spec in specs:
        label, sep, source = spec.partition("=")
        if not sep or "/" in label or not label:
            label, source = "", spec
        if not source:
            raise UsageError(f"--model {spec!r}: expected [LABEL=]PATH_OR_URI")
        parsed.append((label, source))
    return parsed


def run(args: argparse.Namespace) -> int:
    from madn_core.trainer import resolve_device
    from pipelines.evaluation.evaluate import EvaluationConfig, evaluate
    from tune.model_source import load_model_source

    baselines = (
        ()
        if args.baselines == "none"
        else tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    )
    config = EvaluationConfig(
        split=args.split,
        baselines=baselines,
        dice=not args.no_dice,
        workers=args.workers,
        device=args.device,
    )
    device = resolve_device(args.device)
    models = {}
    for label, source in parse_model_specs(args.model):
        key = label or source
        if key in models:
            raise UsageError(f"--model {source} given twice; label one of them LABEL=...")
        models[key] = load_model_source(source, device, args.tracking_uri)
    result = evaluate(args.data, models, args.out, config)
    print((result.out_dir / "report.md").read_text())
    print(f"report: {result.files['report']}")
    return 0
