"""bench/quality.py's report: the metrics, targets and inference-ablation tables it writes."""

from __future__ import annotations

from conftest import bench_module

quality = bench_module("quality")

SETTINGS = {"band_mm": 30.0, "shrink": 0.1, "mri_shrink": 0.0, "resumed": [], "docs": True}
SUMMARY = {
    "No MAR": {"ct_psnr_overall": 32.61, "ct_psnr_near": 20.54, "mri_psnr_near": 11.19},
    "madn": {"ct_psnr_overall": 34.37, "ct_psnr_near": 24.46, "harm_hu": 4.3},
}
ROWS = [
    {
        "method": "madn",
        "target": "ct_psnr_near > No MAR",
        "mean_diff": 3.9,
        "p": 1e-7,
        "n": 9,
        "pass": True,
    },
    {
        "method": "madn",
        "target": "stretch: ct_psnr_near > NMAR",
        "mean_diff": -2.7,
        "p": 0.99,
        "n": 9,
        "pass": False,
    },
]
SHRINK = [{"method": "madn", "measure": "ct_psnr_near", "mean_diff": 1.1, "p": 2e-6, "n": 9}]


def report(ablation: dict[str, list[dict]]) -> str:
    return quality.markdown(dict(SETTINGS), SUMMARY, ROWS, 2616.0, ablation)


def test_report_holds_every_method_and_target_with_its_result() -> None:
    text = report({"band": [], "shrink": SHRINK})
    assert "43.6 min" in text
    assert "| madn | 34.37 | 24.46 | nan |" in text  # a metric a method lacks prints nan
    assert "| madn | ct_psnr_near > No MAR | +3.900 | 1e-07 | 9 | pass |" in text
    assert "| madn | stretch: ct_psnr_near > NMAR | -2.700 | 0.99 | 9 | MISS |" in text
    assert '"docs"' not in text  # not a recipe setting


def test_ablation_tables_appear_only_with_rows() -> None:
    with_shrink = report({"band": [], "shrink": SHRINK})
    assert "`correction_shrink` 0.1" in with_shrink
    assert "| madn | ct_psnr_near | +1.100 | 2e-06 | 9 |" in with_shrink
    assert "implant band" not in with_shrink
    without = report({"band": [], "shrink": []})
    assert "Ablation:" not in without
    assert without.rstrip().endswith("![validation curves](figures/quality/curves.png)")
