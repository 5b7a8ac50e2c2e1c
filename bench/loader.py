"""Shard loading speed: Parquet slice shards -> batched torch tensors, one process, one thread.

Writes a dataset of random 256 x 256 slices in the real shard format (`pipelines.data.shards`, the
writer `madn ingest` uses), then measures slices/s for:
- baseline: the same slices stored with Arrow's fixed-shape tensor type (one Parquet list level
  per pixel), read by row group;
- rows: `SliceDataset.read` of (ct, mri, metal_mask) in row-group order, as torch tensors;
- train: `UnpairedBatches` (2 channels, shuffled windows of row groups, batch 16), the trainer's
  source. Target: >= 2000 slices/s for rows and train.

    .venv/bin/python bench/loader.py [--slices 1024] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipelines.data.dataset import SliceDataset, UnpairedBatches
from pipelines.data.shards import SCALAR_COLUMNS, SCHEMA_VERSION, schema, slices_table, write_shard


def make_dataset(root: Path, slices: int, size: int) -> None:
    rng = np.random.default_rng(0)
    per_subject = 64
    shards = []
    for subject in range(slices // per_subject):
        n = per_subject
        columns: dict[str, object] = {
            name: np.zeros(n, dtype=kind.to_pandas_dtype())
            for name, kind in SCALAR_COLUMNS.items()
            if name not in ("subject_id", "split", "implant_side")
        }
        columns.update(
            subject_id=[f"sub-{subject:03d}"] * n,
            split=["train"] * n,
            implant_side=[""] * n,
            slice_index=np.arange(n, dtype=np.int32),
            has_metal=np.arange(n) % 2 == 0,
            ct=rng.uniform(-1, 1, (n, size, size)).astype(np.float32),
            mri=rng.uniform(-1, 1, (n, size, size)).astype(np.float32),
            metal_mask=(rng.random((n, size, size)) < 0.01).astype(np.uint8),
            labels=np.zeros((n, size, size), np.uint8),
        )
        name = f"sub-{subject:03d}-000.parquet"
        write_shard(slices_table(columns, schema(size, False)), root / name)
        shards.append(name)
    info = {
        "schema_version": SCHEMA_VERSION,
        "image_size": size,
        "has_ground_truth": False,
        "shards": shards,
    }
    (root / "dataset.json").write_text(json.dumps(info))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=1024)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_dataset(root, args.slices, args.size)
        dataset = SliceDataset(root)
        print(
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread; "
            f"{len(dataset)} slices of {args.size} px, "
            f"{sum(f.stat().st_size for f in root.glob('*.parquet')) / 2**20:.0f} MiB"
        )
        # baseline: the same images in Arrow's fixed-shape tensor layout (a Parquet list level
        # per pixel), read by row group with to_numpy_ndarray
        baseline_path = root / "baseline.parquet"
        first = dataset.read(np.arange(min(256, len(dataset))), ["ct", "mri", "metal_mask"])
        tensors = {
            name: pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(values))
            for name, values in first.items()
        }
        pq.write_table(pa.table(tensors), baseline_path, compression="NONE", row_group_size=32)
        reference = pq.ParquetFile(pa.memory_map(str(baseline_path)))
        start = time.perf_counter()
        for group in range(reference.num_row_groups):
            table = reference.read_row_group(group)
            images = [table.column(n).chunk(0).to_numpy_ndarray() for n in tensors]
            torch.from_numpy(np.stack(images[:2], axis=1))
            torch.from_numpy(images[2].copy())
        baseline = reference.metadata.num_rows / (time.perf_counter() - start)
        baseline_path.unlink()
        results = {"baseline: fixed-shape tensor": baseline}
        for repeat in range(2):  # first pass warms the page cache
            start = time.perf_counter()
            positions = np.arange(len(dataset))
            for chunk in range(0, len(positions), 32):
                part = dataset.read(positions[chunk : chunk + 32], ["ct", "mri", "metal_mask"])
                torch.from_numpy(np.stack([part["ct"], part["mri"]], axis=1))
                torch.from_numpy(part["metal_mask"])
            rows = len(positions) / (time.perf_counter() - start)
            batches = UnpairedBatches(dataset, batch_size=16, seed=repeat)
            start = time.perf_counter()
            steps = 0
            for _batch in batches(0):
                steps += 1
            train = steps * 32 / (time.perf_counter() - start)
        results["rows: ct+mri+mask"] = rows
        results["train: UnpairedBatches 2ch"] = train
        print(f"{'reader':32s} {'slices/s':>10s} {'vs baseline':>12s}")
        for name, value in results.items():
            print(f"{name:32s} {value:10.0f} {value / baseline:11.1f}x")


if __name__ == "__main__":
    main()
