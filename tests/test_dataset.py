"""The shard reader and the unpaired training batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.data.dataset import (
    Augment,
    DatasetError,
    SliceDataset,
    UnpairedBatches,
    channels_for_variant,
    iter_slices,
)
from pipelines.data.patches import focused_corners


def test_batches_are_deterministic_per_epoch(dataset_path: Path) -> None:
    dataset = SliceDataset(dataset_path)
    batches = UnpairedBatches(dataset, batch_size=2, seed=3, augment=Augment(flip=True))
    first = [(a.clone(), b.clone()) for a, b in batches(0)]
    again = list(batches(0))
    other = list(batches(1))
    assert len(first) == len(batches) > 0
    assert all(
        torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(first, again, strict=True)
    )
    assert any(not torch.equal(a, c) for (a, _), (c, _) in zip(first, other, strict=True))
    corrupted, clean = first[0]
    assert corrupted.shape == clean.shape == (2, 2, 32, 32)
    assert corrupted.dtype == torch.float32 and corrupted.abs().max() <= 1.0


def test_domains_and_channels(dataset_path: Path) -> None:
    dataset = SliceDataset(dataset_path)
    ct_only = UnpairedBatches(dataset, channels=channels_for_variant("adn-ct"), batch_size=1)
    corrupted_ct = torch.cat([c for c, _ in ct_only(0)])
    assert corrupted_ct.shape[1] == 1
    metal = dataset.read(dataset.select(split="train", has_metal=True), ["ct"])["ct"]
    # every corrupted batch is a train slice with metal: same multiset of slice sums
    np.testing.assert_allclose(
        np.sort(corrupted_ct.sum(dim=(1, 2, 3)).numpy()), np.sort(metal.sum(axis=(1, 2))), rtol=1e-5
    )
    assert len(ct_only) == len(metal)
    assert channels_for_variant("adn-mr") == ("mri",)
    assert channels_for_variant("madn") == ("ct", "mri")


def test_crop_and_validation_iteration(dataset_path: Path) -> None:
    dataset = SliceDataset(dataset_path)
    cropped = UnpairedBatches(dataset, batch_size=2, augment=Augment(crop=16))
    a, b = next(iter(cropped(0)))
    assert a.shape == b.shape == (2, 2, 16, 16)
    seen = [batch["subject_id"] for batch in iter_slices(dataset, "val", ["ct", "ct_clean"], 4)]
    again = [batch["subject_id"] for batch in iter_slices(dataset, "val", ["ct", "ct_clean"], 4)]
    assert [list(s) for s in seen] == [list(s) for s in again]
    assert set(np.concatenate(seen)) == set(dataset.subjects("val"))


def test_opens_a_uri_and_rejects_incomplete_folders(dataset_path: Path, tmp_path: Path) -> None:
    by_uri = SliceDataset(f"file://{dataset_path}")
    assert len(by_uri) == len(SliceDataset(dataset_path))
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        SliceDataset(tmp_path)
    with pytest.raises(DatasetError, match="no column"):
        SliceDataset(dataset_path).read(np.arange(2), ["nonexistent"])
    with pytest.raises(DatasetError, match="no subject"):
        SliceDataset(dataset_path).read_subject("nobody", ["ct"])


def test_focused_corners_hold_metal() -> None:
    rng = np.random.default_rng(0)
    metal = np.zeros((6, 40, 40), bool)
    metal[0, 2:4, 37:39] = True  # a corner: the crop is clamped to the slice
    metal[1, 20, 20] = True
    metal[2, 30:33, 5:8] = True
    for _ in range(20):
        corners = focused_corners(metal, 12, 1.0, rng)
        assert ((corners >= 0) & (corners <= 40 - 12)).all()
        for mask, (top, left) in zip(metal[:3], corners[:3], strict=True):
            assert mask[top : top + 12, left : left + 12].any()
    seen = {tuple(focused_corners(metal, 12, 1.0, rng)[4]) for _ in range(20)}
    assert len(seen) > 1  # slices without metal: uniform corners
    never = focused_corners(metal, 12, 0.0, np.random.default_rng(1))
    held = [m[t : t + 12, c : c + 12].any() for m, (t, c) in zip(metal[:3], never[:3], strict=True)]
    assert not all(held)


def test_focused_batches_crop_around_the_implant(dataset_path: Path) -> None:
    dataset = SliceDataset(dataset_path)
    focused = UnpairedBatches(dataset, batch_size=2, seed=1, augment=Augment(crop=12, focus=1.0))
    threshold = 0.999  # CT window up to 2000 HU: metal is saturated (madn_core.band)
    pairs = list(focused(0))
    assert all(c.shape == b.shape == (2, 2, 12, 12) for c, b in pairs)
    corrupted = torch.cat([c for c, _ in pairs])
    assert (corrupted[:, 0].amax(dim=(1, 2)) >= threshold).all()
    again = list(focused(0))
    assert all(torch.equal(a, c) for (a, _), (c, _) in zip(pairs, again, strict=True))
    with pytest.raises(DatasetError, match=r"patch focus 1\.5 must be in \[0, 1\]"):
        UnpairedBatches(dataset, augment=Augment(crop=12, focus=1.5))
