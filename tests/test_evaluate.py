"""`madn evaluate`: every table and figure with finite values on a tiny dataset; bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config

from madn_core.checkpoint import save_checkpoint
from madn_core.model import MADN
from pipelines.data.registration import RegistrationConfig
from pipelines.evaluation.evaluate import EvaluationConfig, EvaluationError, evaluate
from pipelines.evaluation.paired_stats import paired_summary
from pipelines.evaluation.propagation import MRIVolume, dice_per_muscle, propagate_all
from tune.cli import main

# the evaluation's rigid + B-spline registration with fewer iterations: the same code path, and
# enough to register an uncorrected MRI onto its atlas at 48 px (No MAR's Dice stays above 0)
QUICK_REGISTRATION = RegistrationConfig(
    mode="bspline", sampling=0.25, mesh_mm=40.0, rigid_iterations=30, bspline_iterations=10
)


@pytest.fixture(scope="module")
def eval_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 subjects at 48 px x 12 slices with 4 test subjects (2 implanted): large enough that
    every muscle has voxels on both sides, so every table cell is a real number."""
    from pipelines.data.ingest import IngestConfig, ingest
    from pipelines.data.registration import RegistrationConfig
    from pipelines.synth.generate import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("eval-data")
    manifest = synthesize(
        SynthConfig(subjects=8, metal_fraction=0.5, size=48, slices=12, seed=1),
        root / "synth",
        progress=False,
    )
    config = IngestConfig(
        size=48,
        registration=RegistrationConfig(mode="none"),
        val_fraction=0.25,
        test_subjects="4",
        seed=0,
    )
    return ingest(manifest, root / "cache", config, progress=False).path


@pytest.fixture(scope="module")
def eval_run(eval_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48 px madn model trained for one epoch (its run folder)."""
    from pipelines.training.train import train_model

    config = tiny_config("madn", image_size=48, **{"train.batch_size": 4, "train.epochs": 1})
    out = tmp_path_factory.mktemp("eval-run")
    return train_model(eval_dataset, config, out, progress=False).out_dir


def test_evaluate_writes_every_table_and_figure(
    eval_dataset: Path, eval_run: Path, tmp_path: Path
) -> None:
    adn_mr = MADN(tiny_config("adn-mr", image_size=48)).eval()
    result = evaluate(
        eval_dataset,
        {str(eval_run / "last.ckpt"): str(eval_run / "last.ckpt"), "ADN MR": adn_mr},
        tmp_path / "eval",
        EvaluationConfig(workers=2, registration=QUICK_REGISTRATION),
        progress=False,
    )
    assert result.reference == "MADN"
    assert result.methods == ["No MAR", "LI", "NMAR", "MADN", "ADN MR"]
    for name in ("report", "sigma_boxplot", "dice_boxplot", "comparison"):
        assert result.files[name].stat().st_size > 0
    for name in ("sigma_ct", "dice", "ground_truth"):
        assert (tmp_path / "eval" / f"{name}.md").exists()
        summary = pd.read_csv(tmp_path / "eval" / f"{name}_summary.csv")
        assert np.isfinite(summary["mean"]).all(), name
        assert (summary["n"] >= 2).all(), name
        others = summary[summary["method"] != result.reference]
        if name != "dice":  # ADN MR is the MRI reference's only rival; p may be NaN if equal
            assert np.isfinite(others["p_vs_reference"]).all(), name
    sigma = result.summaries["sigma_ct"]
    assert set(sigma["method"]) == {"No MAR", "LI", "NMAR", "MADN"}  # ADN MR has no CT
    assert set(sigma["side"]) == {"implanted", "contralateral"}

    # metal artefacts raise muscle noise on the implanted side; LI removes most of it
    def mean(method: str, side: str) -> float:
        rows = sigma[(sigma["method"] == method) & (sigma["side"] == side)]
        return float(rows["mean"].mean())

    assert mean("No MAR", "implanted") > mean("No MAR", "contralateral")
    assert mean("LI", "implanted") < mean("No MAR", "implanted")
    dice = result.summaries["dice"]
    assert set(dice["method"]) == {"No MAR", "MADN", "ADN MR"}
    assert ((dice["mean"] >= 0) & (dice["mean"] <= 1)).all()
    # the uncorrected MRI registers onto its atlas; a one-epoch model's blurred output may not
    # (one of its muscles scored exactly 0 in a full-suite run, 2026-12-03)
    assert (dice[dice["method"] == "No MAR"]["mean"] > 0).all()
    truth = result.summaries["ground_truth"]
    assert set(truth["region"]) == {"overall", "near"}
    report = result.files["report"].read_text()
    assert "sigma_CT" in report and "Dice" in report and "PSNR" in report


def test_dice_and_paired_tests_measure_what_they_claim() -> None:
    labels = np.zeros((8, 32, 32), np.uint8)
    labels[2:6, 8:16, 8:16] = 1
    shifted = np.roll(labels, 4, axis=2)
    assert dice_per_muscle(labels, labels)["gmax"] == 1.0
    assert dice_per_muscle(shifted, labels)["gmax"] == pytest.approx(0.5)
    assert math.isnan(dice_per_muscle(labels, labels)["gmed"])
    long = pd.DataFrame(
        {
            "method": ["A"] * 4 + ["B"] * 4,
            "case": list("wxyz") * 2,
            "v": [1.0, 2.0, 3.0, 4.0, 11.0, 12.1, 13.0, 14.2],
        }
    )
    summary = paired_summary(long, "v", [], "case", "B", ["A", "B"]).set_index("method")
    assert summary.loc["A", "p_vs_reference"] < 1e-4 and summary.loc["A", "significant"]
    assert math.isnan(summary.loc["B", "p_vs_reference"])
    assert summary.loc["A", "effect_dz"] < -10  # A is ~10 below B with a tiny spread
    assert math.isnan(summary.loc["B", "p_holm"])


def test_holm_correction_matches_the_step_down_rule() -> None:
    from pipelines.evaluation.paired_stats import holm

    p = np.array([0.01, 0.04, math.nan, 0.03, 0.5])
    adjusted = holm(p)  # m = 4 tests: 0.01*4, max(0.04, 0.03*3), max(0.09, 0.04*2), 0.5*1
    np.testing.assert_allclose(adjusted[[0, 3, 1, 4]], [0.04, 0.09, 0.09, 0.5])
    assert math.isnan(adjusted[2])
    assert (adjusted[np.isfinite(p)] >= p[np.isfinite(p)]).all()


def test_propagation_recovers_a_shift() -> None:
    """A smooth blob volume and its shifted copy: registration brings Dice near 1."""
    _, y, x = np.mgrid[0:12, 0:40, 0:40]
    image = np.exp(-(((y - 20) / 8.0) ** 2 + ((x - 18) / 6.0) ** 2)).astype(np.float32)
    image += 0.5 * np.exp(-(((y - 12) / 4.0) ** 2 + ((x - 28) / 4.0) ** 2))
    labels = (image > 0.5).astype(np.uint8)
    moved, moved_labels = np.roll(image, 3, axis=2), np.roll(labels, 3, axis=2)
    volumes = {
        "m": [
            MRIVolume("a", image, labels, (1.0, 1.0, 2.0)),
            MRIVolume("b", moved, moved_labels, (1.0, 1.0, 2.0)),
        ]
    }
    before = dice_per_muscle(labels, moved_labels)["gmax"]
    pairs = propagate_all(volumes, workers=1, progress=False)
    assert len(pairs) == 2
    assert all(p.dice["gmax"] > max(0.9, before + 0.1) for p in pairs)


def test_evaluate_refuses_bad_input(
    eval_dataset: Path, eval_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = MADN(tiny_config("madn"))
    with pytest.raises(EvaluationError, match="32 px"):
        evaluate(eval_dataset, {"big": big}, tmp_path / "a", progress=False)
    with pytest.raises(EvaluationError, match="baseline"):
        EvaluationConfig(baselines=("bogus",))
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes((eval_run / "last.ckpt").read_bytes()[:1000])
    for model in (str(broken), str(tmp_path / "missing.ckpt")):
        code = main(
            ["evaluate", "--data", str(eval_dataset), "--model", model, "--out", str(tmp_path)]
        )
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("madn evaluate: error:") and model in err[0]
    save_checkpoint({"not": "a model"}, tmp_path / "odd.ckpt")
    code = main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "x")])
    assert code == 2


def test_evaluate_cli_baselines_only(eval_dataset: Path, tmp_path: Path) -> None:
    code = main(
        [
            "evaluate",
            "--data",
            str(eval_dataset),
            "--out",
            str(tmp_path / "e"),
            "--baselines",
            "li",
            "--no-dice",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    summary = pd.read_csv(tmp_path / "e" / "sigma_ct_summary.csv")
    assert set(summary["method"]) == {"No MAR", "LI"}
    assert not (tmp_path / "e" / "dice.md").exists()
