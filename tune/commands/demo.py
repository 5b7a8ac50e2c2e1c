"""`madn demo`: the main job end to end on embedded defaults.

synthesize -> ingest -> sweep (all three similarity metrics + the multichannel baseline, small
model, local Ray) -> promote (MLflow registry, sqlite store) -> report. Everything goes under
--out: the data, `mlflow.db` + `mlartifacts/`, the Tune storage `ray/` and the report. A second
run adds a new sweep to the same MLflow experiment (and reuses the cached dataset).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tune.commands.common import UsageError, positive_int

EXPERIMENT = "madn-demo"
MODEL_NAME = "madn-demo"
# A third of the subjects in test: with the default 24 (half implanted), 4 implanted test
# subjects carry the promotion gate's paired evidence (with 16 and a fifth, one did: p = nan).
TEST_FRACTION = "0.34"


def add(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the main job end to end on embedded defaults",
        description=(
            "Synthesize a small hip CT/MRI dataset, ingest it, sweep the similarity metric, "
            "lambda_sim and sigma with Ray Tune (plus the multichannel baseline), promote the "
            "best model in the MLflow registry and write the comparison report. Local Ray, "
            "MLflow on sqlite in --out."
        ),
    )
    parser.add_argument(
        "--out", help="output folder (default: madn_work/demo, or $MADN_HOME/demo when set)"
    )
    parser.add_argument("--subjects", type=positive_int, default=24, help="(%(default)s)")
    parser.add_argument("--size", type=positive_int, default=64, help="pixels (%(default)s)")
    parser.add_argument("--slices", type=positive_int, default=12, help="(%(default)s)")
    parser.add_argument("--trials", type=positive_int, default=8, help="(%(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=10, help="(%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="(%(default)s)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tune.registry import promote
    from tune.report import build_report

    if args.size < 32 or args.size % 4:
        raise UsageError(f"--size must be >= 32 and divisible by 4, got {args.size}")
    start = time.monotonic()
    from tune.tracking import madn_home

    out = Path(args.out or madn_home("madn_work") / "demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = _prepare_data(args, out)
    name = time.strftime("demo-%Y%m%d-%H%M%S")
    print(f"[3/5] sweep {name}: {args.trials} trials + multichannel baseline, {args.epochs} epochs")
    result = _sweep(args, data, name, out)
    print(f"      trials: {result.outcomes}; best {result.best_config} = {result.best_value}")
    print("[4/5] promote the best trial (champion only if it beats No MAR and the champion)")
    promotion = promote(EXPERIMENT, MODEL_NAME, workdir=str(out))
    print(
        f"      {promotion.model_uri}: {promotion.test_metric} = "
        f"{promotion.challenger_score:+.3f} dB vs No MAR over {promotion.test_subjects} implanted "
        f"test subjects (one-sided paired p = {promotion.p_value:.3g})"
        + (" -> champion" if promotion.promoted else f" -> challenger only: {promotion.reason}")
    )
    print("[5/5] report")
    report = build_report(EXPERIMENT, out / "report" / name, workdir=str(out))
    _print_next_steps(time.monotonic() - start, report, result.tracking_uri, promotion.promoted)
    return 0


def _prepare_data(args: argparse.Namespace, out: Path) -> str:
    """Steps 1-2: synthesize (once) and ingest (cached); the dataset folder."""
    from pipelines.data.ingest import IngestConfig, ingest
    from pipelines.data.registration import RegistrationConfig
    from pipelines.synth.generate import SynthConfig, synthesize

    print(f"[1/5] synthesize {args.subjects} subjects ({args.size} px, {args.slices} slices)")
    manifest = out / "synth" / "manifest.csv"
    if not manifest.exists():
        config = SynthConfig(
            subjects=args.subjects,
            metal_fraction=0.5,
            size=args.size,
            slices=args.slices,
            seed=args.seed,
        )
        manifest = synthesize(config, out / "synth", workers=2)
    print("[2/5] ingest into Parquet shards")
    config = IngestConfig(
        size=args.size,
        registration=RegistrationConfig(mode="none"),
        val_fraction=0.25,
        test_subjects=TEST_FRACTION,
        seed=args.seed,
    )
    return str(ingest(manifest, out / "cache", config, workers=2).path)


def _sweep(args: argparse.Namespace, data: str, name: str, out: Path) -> Any:
    from tune.sweep import SweepSettings, run_sweep

    return run_sweep(
        SweepSettings(
            data=data,
            trials=args.trials,
            epochs=args.epochs,
            experiment=EXPERIMENT,
            name=name,
            max_concurrent=2,
            grace_period=min(3, args.epochs),
            seed=args.seed,
            model={
                "recipe": "quality",
                "base_channels": 8,
                "num_res": 1,
                "batch_size": 4,
                "lr": 5e-4,
            },
            workdir=str(out),
            verbose=1,
        )
    )


def _print_next_steps(seconds: float, report: Path, uri: str, crowned: bool) -> None:
    print(f"\ndemo finished in {seconds / 60:.1f} min")
    print(f"report:     {report}")
    print(f"MLflow UI:  mlflow ui --backend-store-uri {uri}")
    print("            then open http://127.0.0.1:5000")
    alias = "champion" if crowned else "challenger"
    print(
        f"correct:    madn correct --model models:/{MODEL_NAME}@{alias} --tracking-uri "
        f"{uri} --ct CT.nii.gz --mri MRI.nii.gz --out OUT"
    )
