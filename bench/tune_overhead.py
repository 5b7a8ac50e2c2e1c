"""Ray Tune + MLflow overhead per sweep trial, against the same training run in-process.

Baseline: `pipelines.training.train.train_model` called N times in one process (no Ray, no MLflow).
Sweep: `madn sweep` machinery with N trials of the same model and schedule, one at a time
(max_concurrent 1, so the comparison is per trial, not a parallel speed-up), local Ray with
2 CPUs, sqlite MLflow. Overhead per trial = (sweep wall time - Ray start) / N - baseline / N.

    python bench/tune_overhead.py [--trials 4] [--epochs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="madn-bench-tune-") as folder:
        _measure(Path(folder), args.trials, args.epochs)


def _measure(root: Path, trials: int, epochs: int) -> None:
    from pipelines.data.ingest import IngestConfig, ingest
    from pipelines.data.registration import RegistrationConfig
    from pipelines.synth.generate import SynthConfig, synthesize
    from pipelines.training.train import train_model
    from tune.train_settings import build_config

    manifest = synthesize(
        SynthConfig(subjects=8, metal_fraction=0.5, size=32, slices=8, seed=3),
        root / "synth",
        progress=False,
    )
    data = ingest(
        manifest,
        root / "cache",
        IngestConfig(size=32, registration=RegistrationConfig(mode="none"), test_subjects="2"),
        progress=False,
    ).path
    model = {"base_channels": 8, "num_res": 1, "batch_size": 4, "lr": 5e-4, "epochs": epochs}
    settings = {**model, "variant": "multichannel", "device": "cpu"}

    start = time.perf_counter()
    for i in range(trials):
        config = build_config(settings, 32)
        train_model(data, config, root / f"direct-{i}", progress=False, max_val_slices=16)
    direct = time.perf_counter() - start

    import ray

    from tune.sweep import SweepSettings, run_sweep

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    start = time.perf_counter()
    run_sweep(
        SweepSettings(
            data=str(data),
            trials=0,
            epochs=epochs,
            max_concurrent=1,
            cpus_per_trial=1,
            baselines=[{"variant": "multichannel"}] * trials,
            model={k: v for k, v in model.items() if k != "epochs"},
            workdir=str(root),
            max_val_slices=16,
            verbose=0,
        )
    )
    swept = time.perf_counter() - start
    ray.shutdown()
    per_direct, per_swept = direct / trials, swept / trials
    print(f"trials: {trials}, epochs each: {epochs}, 32 px, base width 8")
    print(f"ray.init: {ray_start:.1f} s")
    print(f"in-process train_model: {per_direct:.2f} s per trial (baseline)")
    print(f"through the sweep (Tune + MLflow): {per_swept:.2f} s per trial")
    print(
        f"overhead: {per_swept - per_direct:.2f} s per trial; ratio {per_swept / per_direct:.2f}x"
    )


if __name__ == "__main__":
    main()
