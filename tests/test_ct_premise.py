"""bench/ct_premise.py: a two-channel model re-run with its CT input swapped, on real data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import bench_module

from pipelines.data.dataset import SliceDataset
from pipelines.training.validation import Validator


def test_swapped_inputs_and_the_table(
    dataset_path: Path, trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    premise = bench_module("ct_premise")
    dataset = SliceDataset(dataset_path)
    subject = next(
        s
        for s in dataset.subjects("test")
        if len(dataset.select(split="test", has_metal=True, subject=s))
    )
    validator = Validator(dataset, ("ct", "mri"), split="test", subject=subject)
    data = validator.data
    assert premise.swapped_ct(validator, "artefact", 10.0) is data["ct"]
    np.testing.assert_array_equal(premise.swapped_ct(validator, "clean", 10.0), data["ct_clean"])
    blurred = premise.swapped_ct(validator, "blurred", 10.0)
    assert blurred.shape == data["ct"].shape and blurred.std() < data["ct"].std()
    nmar = premise.swapped_ct(validator, "nmar", 10.0)
    assert not np.array_equal(nmar, data["ct"]) and np.abs(nmar).max() <= 1.0

    run = tmp_path / "run"
    (run / "runs").mkdir(parents=True)
    (run / "runs" / "madn").symlink_to(trained_run, target_is_directory=True)
    out = tmp_path / "premise.md"
    argv = ["ct_premise.py", str(dataset_path), str(run), "--variants", "madn", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    assert premise.main() == 0
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [r["input"] for r in rows] == list(premise.INPUTS)
    assert rows[0]["p_psnr_mri_near"] == 1.0
    assert all(np.isfinite(r["psnr_mri_near"]) for r in rows)
    assert rows[3]["psnr_ct"] != rows[0]["psnr_ct"]  # the clean CT input changes the CT output
    assert "| run | madn | clean |" in out.read_text()

    monkeypatch.setattr(sys, "argv", [*argv[:4], "adn-ct"])
    with pytest.raises(SystemExit, match="adn-ct has no CT and MRI input"):
        premise.main()
