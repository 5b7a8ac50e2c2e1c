"""Ingestion time per subject for a 256 x 256 x 64 CT/MRI pair, by registration mode.

Synthesizes one implanted subject (or uses --manifest), then ingests it with --register none
(the baseline), rigid and bspline into fresh caches, one worker, and prints seconds per subject
and the ratio to the baseline.

    .venv/bin/python bench/ingest.py [--size 256] [--slices 64] [--manifest M.csv]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from pipelines.data.ingest import IngestConfig, ingest
from pipelines.data.manifest import read_manifest
from pipelines.data.registration import RegistrationConfig
from pipelines.synth.generate import SynthConfig, synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--manifest", help="use this manifest instead of synthesizing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = args.manifest
        if manifest is None:
            start = time.perf_counter()
            config = SynthConfig(
                subjects=1, metal_fraction=1.0, size=args.size, slices=args.slices, seed=0
            )
            manifest = synthesize(config, Path(tmp) / "synth", progress=False)
            print(f"synthesized 1 subject in {time.perf_counter() - start:.1f} s")
        subjects = len(read_manifest(manifest))
        print(
            f"{platform.processor() or platform.machine()}; {subjects} subject(s), "
            f"{args.size} x {args.size} x {args.slices}"
        )
        baseline = None
        for mode in ("none", "rigid", "bspline"):
            config = IngestConfig(
                size=args.size,
                registration=RegistrationConfig(mode=mode),
                test_subjects="0",
                val_fraction=0.0,
            )
            start = time.perf_counter()
            ingest(manifest, Path(tmp) / f"cache-{mode}", config, progress=False)
            seconds = (time.perf_counter() - start) / subjects
            baseline = baseline or seconds
            print(f"--register {mode:8s} {seconds:7.2f} s/subject  {seconds / baseline:5.1f}x")


if __name__ == "__main__":
    main()
