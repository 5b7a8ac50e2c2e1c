"""Load figure of the sweep service: many tiny trials through one driver and the embedded store.

    python bench/sweep_load.py [--trials 64] [--max-concurrent 2] [--out runs/sweep_load]

Synthesizes and ingests a small dataset (32 px), then runs `madn sweep` in this process with
`--trials N` tiny trials (32 px, width 8, 1 epoch, no baseline) on a local Ray runtime and the
embedded sqlite MLflow store. Reports (and writes OUT/sweep_load.json):
- the driver's peak resident memory (this process; Ray's own processes are not counted);
- the seconds of overhead per trial: (wall time - summed trial time / max_concurrent) / trials;
- the size of the MLflow store (mlflow.db plus mlartifacts);
- trials that failed (outcome error) or were lost (no MLflow run, or a run left RUNNING).
The target is zero failed or lost trials.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.data.ingest import IngestConfig, ingest  # noqa: E402
from pipelines.data.registration import RegistrationConfig  # noqa: E402
from pipelines.synth.generate import SynthConfig, synthesize  # noqa: E402
from tune import tracking  # noqa: E402
from tune.sweep import SweepSettings, run_sweep  # noqa: E402


def folder_size(path: Path) -> int:
    """Bytes under `path` (a file or a folder)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare(out: Path) -> str:
    manifest = synthesize(
        SynthConfig(subjects=8, metal_fraction=0.5, size=32, slices=8, seed=3),
        out / "synth",
        progress=False,
    )
    config = IngestConfig(
        size=32, registration=RegistrationConfig(mode="none"), test_subjects="2", seed=0
    )
    return str(ingest(manifest, out / "cache", config, progress=False).path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--out", default="runs/sweep_load")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    shutil.rmtree(out / "work", ignore_errors=True)
    data = prepare(out)
    settings = SweepSettings(
        data=data,
        trials=args.trials,
        epochs=1,
        max_concurrent=args.max_concurrent,
        experiment="sweep-load",
        baselines=[],
        cover_choices=True,
        model={"base_channels": 8, "num_res": 1, "batch_size": 4, "lr": 5e-4},
        max_val_slices=8,
        workdir=str(out / "work"),
        verbose=0,
    )
    start = time.monotonic()
    result = run_sweep(settings)
    wall = time.monotonic() - start
    runs = tracking.trial_runs(result.tracking_uri, result.experiment_id, "sweep-load")
    trial_seconds = [(r.info.end_time - r.info.start_time) / 1000 for r in runs if r.info.end_time]
    lost = args.trials - len(runs) + sum(r.info.status == "RUNNING" for r in runs)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "trials": args.trials,
        "max_concurrent": args.max_concurrent,
        "wall_s": round(wall, 1),
        "overhead_s_per_trial": round(
            (wall - sum(trial_seconds) / args.max_concurrent) / args.trials, 2
        ),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "store_mb": round(
            (folder_size(out / "work" / "mlflow.db") + folder_size(out / "work" / "mlartifacts"))
            / 2**20,
            1,
        ),
        "outcomes": result.outcomes,
        "failed": result.outcomes.get("error", 0),
        "lost": lost,
    }
    (out / "sweep_load.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0 if report["failed"] == 0 and report["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
