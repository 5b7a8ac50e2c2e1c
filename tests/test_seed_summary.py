"""bench/seed_summary.py: targets over training seeds, and runs of different recipes refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import bench_module


def write_run(folder: Path, seed: int, gain: float, lr: float = 2e-4) -> Path:
    """A quality run's summary.json with two targets: a CT gain and the stretch goal."""
    folder.mkdir()
    targets = [
        {"method": "adn-ct", "target": "ct_psnr_near > No MAR", "mean_diff": gain, "p": 0.01,
         "n": 9, "pass": gain > 0},
        {"method": "adn-ct", "target": "stretch: ct_psnr_near > NMAR", "mean_diff": gain - 4,
         "p": 1.0, "n": 9, "pass": False},
    ]  # fmt: skip
    methods = {
        "No MAR": {"ct_psnr_near": 20.0, "ct_psnr_overall": 32.0, "sigma_implanted": 180.0},
        "NMAR": {"ct_psnr_near": 27.0, "ct_psnr_overall": 36.0, "sigma_implanted": 55.0},
    }
    summary = {"settings": {"seed": seed, "lr": lr, "out": str(folder)}, "targets": targets,
               "methods": methods}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_targets_over_seeds(tmp_path: Path) -> None:
    module = bench_module("seed_summary")
    runs = module.load_runs([write_run(tmp_path / "a", 7, 2.5), write_run(tmp_path / "b", 1, -0.5)])
    frame = module.target_frame(runs)
    table = module.target_table(frame)
    assert (
        "| adn-ct | ct_psnr_near > No MAR | -0.50 **MISS** | +2.50 pass | +1.00 +- 2.12 | 1/2 |"
        in table
    )
    counts = module.pass_counts(frame)
    assert "- seed 1: 0 of 1 targets pass; stretch goal met by 0 of 1" in counts
    assert "- seed 7: 1 of 1 targets pass" in counts
    figure = module.seed_figure(frame, runs, tmp_path / "seeds.png")
    assert figure.stat().st_size > 1000


def test_runs_of_another_recipe_or_the_same_seed_are_refused(tmp_path: Path) -> None:
    module = bench_module("seed_summary")
    base = write_run(tmp_path / "a", 7, 1.0)
    with pytest.raises(SystemExit, match=r"setting 'lr' is 0\.001, expected 0\.0002"):
        module.load_runs([base, write_run(tmp_path / "b", 1, 1.0, lr=1e-3)])
    with pytest.raises(SystemExit, match="seed 7 is given twice"):
        module.load_runs([base, write_run(tmp_path / "c", 7, 1.0)])
    with pytest.raises(SystemExit, match=r"no summary\.json"):
        module.load_runs([base, tmp_path])
