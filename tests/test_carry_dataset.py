"""bench/carry_dataset.py: a dataset packed for a GPU machine unpacks to the same shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import bench_module

from pipelines.data.shards import schema, slices_table, tensor_column, write_shard


def write_dataset(root: Path, size: int = 16, slices: int = 3) -> Path:
    """A two-shard dataset of random images in [-1, 1] (ends included) and random masks."""
    rng = np.random.default_rng(0)
    dataset = root / "abc123"
    dataset.mkdir()
    (dataset / "dataset.json").write_text(json.dumps({"key": "abc123"}))
    for subject in ("sub-000", "sub-001"):
        columns = {
            "subject_id": np.array([subject] * slices),
            "slice_index": np.arange(slices, dtype=np.int32),
            "split": np.array(["train"] * slices),
            "has_metal": np.array([True, False, True]),
            "subject_has_metal": np.array([True] * slices),
            "implant_side": np.array(["left"] * slices),
        }
        for name in ("ct_min", "ct_max", "mri_low", "mri_high"):
            columns[name] = rng.normal(size=slices).astype(np.float32)
        for name in ("spacing_x", "spacing_y", "spacing_z", "origin_x", "origin_y", "origin_z"):
            columns[name] = rng.normal(size=slices)
        for name in ("ct", "mri", "ct_clean", "mri_clean"):
            image = rng.uniform(-1, 1, (slices, size, size)).astype(np.float32)
            image[:, 0, :2] = (-1.0, 1.0)
            columns[name] = image
        for name in ("metal_mask", "labels"):
            columns[name] = rng.integers(0, 9, (slices, size, size), dtype=np.uint8)
        write_shard(slices_table(columns, schema(size, True)), dataset / f"{subject}-000.parquet")
    return dataset


def test_pack_unpack_round_trip(tmp_path: Path) -> None:
    carry = bench_module("carry_dataset")
    dataset = write_dataset(tmp_path)
    archive = tmp_path / "dataset.tar"
    carry.pack(dataset, archive)
    (tmp_path / "there").mkdir()
    restored = carry.unpack(archive, tmp_path / "there")
    assert restored == tmp_path / "there" / "abc123"
    assert (restored / "dataset.json").read_text() == (dataset / "dataset.json").read_text()
    for shard in sorted(dataset.glob("*.parquet")):
        before, after = pq.read_table(shard), pq.read_table(restored / shard.name)
        assert after.schema.equals(before.schema, check_metadata=True)
        for name in before.column_names:
            if name in ("ct", "mri", "ct_clean", "mri_clean"):
                old, new = tensor_column(before, name), tensor_column(after, name)
                assert np.abs(new - old).max() <= 1.6e-5
                assert new[:, 0, 0].tolist() == [-1.0] * 3 and new[:, 0, 1].tolist() == [1.0] * 3
            elif name in ("metal_mask", "labels"):
                assert np.array_equal(tensor_column(after, name), tensor_column(before, name))
            else:
                assert after.column(name).equals(before.column(name))


def test_pack_refuses_images_outside_the_unit_range(tmp_path: Path) -> None:
    carry = bench_module("carry_dataset")
    images = np.zeros((1, 4, 4), np.float32)
    images[0, 1, 2] = 1.5
    with pytest.raises(ValueError, match=r"'ct' spans \[0.0, 1.5\], expected \[-1, 1\]"):
        carry.quantize(images, "ct")


def test_pack_refuses_a_directory_without_dataset_json(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no dataset\.json"):
        bench_module("carry_dataset").pack(tmp_path, tmp_path / "x.tar")
