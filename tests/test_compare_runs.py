"""bench/compare_runs.py: two quality runs paired per subject, the same or different variants."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import bench_module

SUBJECTS = ("sub-001", "sub-002", "sub-003", "sub-004")


def write_report(folder: Path, near_db: dict[str, list[float]]) -> Path:
    """A quality run's report/ case tables (the evaluation's CSV format) holding CT PSNR near the
    implant per variant and subject, and one implanted-side sigma_CT per subject."""
    report = folder / "report"
    report.mkdir(parents=True)
    truth, sigma = [], []
    for method, values in near_db.items():
        for subject, value in zip(SUBJECTS, values, strict=True):
            truth.append((method, "CT", "psnr", "near", subject, value))
            sigma.append((method, "GMAX", "implanted", subject, 50.0))
    pd.DataFrame(
        truth, columns=["method", "modality", "metric", "region", "subject", "value"]
    ).to_csv(report / "ground_truth_cases.csv", index=False)
    pd.DataFrame(sigma, columns=["method", "muscle", "side", "subject", "sigma_hu"]).to_csv(
        report / "sigma_ct_cases.csv", index=False
    )
    return folder


def near_row(rows: list[dict]) -> dict:
    (row,) = [r for r in rows if r["measure"] == "ct_psnr_near"]
    return row


def test_same_variant_and_cross_variant_pairs(tmp_path: Path) -> None:
    module = bench_module("compare_runs")
    base = write_report(
        tmp_path / "base", {"madn": [20, 21, 22, 23], "multichannel": [21, 22.5, 23, 24.5]}
    )
    new = write_report(tmp_path / "new", {"madn": [21, 22, 23.5, 24]})
    same = module.compared(base, new)
    assert [r["method"] for r in same] == ["madn", "madn"]  # the PSNR and the sigma rows
    assert near_row(same)["mean_diff"] == pytest.approx(1.125)
    crossed = module.compared(base, new, ("multichannel", "madn"))
    assert near_row(crossed)["mean_diff"] == pytest.approx(-0.125)
    assert near_row(crossed)["n"] == 4
    assert "(madn - multichannel)" in module.table(crossed, base, new, ("multichannel", "madn"))


def test_bad_variant_pairs_are_refused(tmp_path: Path) -> None:
    module = bench_module("compare_runs")
    with pytest.raises(SystemExit, match="expected BASE_V:NEW_V"):
        module.variant_pair("multichannel:foo")
    with pytest.raises(SystemExit, match="expected BASE_V:NEW_V"):
        module.variant_pair("madn")
    base = write_report(tmp_path / "base", {"madn": [20, 21, 22, 23]})
    new = write_report(tmp_path / "new", {"madn": [21, 22, 23.5, 24]})
    with pytest.raises(SystemExit, match="no adn-ct in report/"):
        module.compared(base, new, ("adn-ct", "madn"))
