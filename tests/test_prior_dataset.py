"""bench/prior_dataset.py: a copy of a real ingested dataset whose metal slices' CT is NMAR's."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import bench_module, tiny_config

from pipelines.data.dataset import SliceDataset
from pipelines.training.train import with_data_spec

COLUMNS = ["ct", "mri", "ct_clean", "metal_mask", "labels", "has_metal", "ct_min"]


def run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    module = bench_module("prior_dataset")
    monkeypatch.setattr(sys, "argv", ["prior_dataset.py", *argv])
    return module.main()


def test_the_prior_goes_beside_the_raw_ct_on_metal_slices_only(
    dataset_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "nmar"
    assert run(monkeypatch, str(dataset_path), str(target), "--prior", "nmar") == 0
    source, copy = SliceDataset(dataset_path), SliceDataset(target)
    assert copy.info["ct_prior"] == "nmar"
    assert copy.info["key"] == f"{source.info['key']}-nmar"
    positions = np.arange(len(source))
    before, after = source.read(positions, COLUMNS), copy.read(positions, [*COLUMNS, "ct_prior"])
    for name in COLUMNS:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)
    metal = before["metal_mask"].reshape(len(positions), -1).any(axis=1)
    assert metal.any() and (~metal).any()
    np.testing.assert_array_equal(after["ct_prior"][~metal], before["ct"][~metal])
    changed = np.abs(after["ct_prior"][metal] - before["ct"][metal]).reshape(metal.sum(), -1)
    assert (changed.max(axis=1) > 0.01).all()  # NMAR replaced the metal trace's streaks
    assert np.abs(after["ct_prior"]).max() <= 1.0
    assert not list(tmp_path.glob("*.partial"))
    # a model trained on it records the prior, so that `madn correct` applies it too
    assert with_data_spec(tiny_config(), copy).data.ct_prior == "nmar"
    assert with_data_spec(tiny_config(), source).data.ct_prior == "none"
    with pytest.raises(SystemExit, match="already has CT prior 'nmar'"):
        run(monkeypatch, str(target), str(tmp_path / "twice"))


def test_a_dataset_that_names_a_prior_without_its_column_is_refused(
    dataset_path: Path, tmp_path: Path
) -> None:
    from pipelines.data.ct_prior import PriorError, stored_prior

    legacy = tmp_path / "legacy"
    shutil.copytree(dataset_path, legacy)
    info = json.loads((legacy / "dataset.json").read_text())
    (legacy / "dataset.json").write_text(json.dumps({**info, "ct_prior": "nmar"}))
    with pytest.raises(
        PriorError,
        match=r"legacy: dataset.json names CT prior 'nmar' but .* "
        r"re-create it with `madn ingest --ct-prior nmar`",
    ):
        stored_prior(SliceDataset(legacy))


def test_refuses_an_existing_target_or_a_folder_without_dataset_json(
    dataset_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="taken: exists"):
        run(monkeypatch, str(dataset_path), str(tmp_path / "taken"))
    with pytest.raises(SystemExit, match=r"no dataset\.json"):
        run(monkeypatch, str(tmp_path / "taken"), str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()
    assert json.loads((Path(dataset_path) / "dataset.json").read_text())["key"]
