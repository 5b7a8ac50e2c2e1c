"""`madn ingest --ct-prior nmar`: the prior beside the raw CT, a model trained on it, and an
evaluation that still measures against the raw CT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import bench_module, tiny_config

from madn_core.checkpoint import load_model
from pipelines.data.ct_prior import prior_of_slices
from pipelines.data.dataset import SliceDataset
from pipelines.data.ingest import IngestConfig, IngestError, ingest
from pipelines.data.registration import RegistrationConfig
from tune.cli import main

READ = ["ct", "ct_prior", "metal_mask", "spacing_x", "ct_min", "ct_max", "subject_id"]


def _config(prior: str) -> IngestConfig:
    """The `dataset_path` fixture's settings, with `prior`."""
    none = RegistrationConfig(mode="none")
    return IngestConfig(
        size=32, registration=none, val_fraction=0.25, test_subjects="2", seed=0, ct_prior=prior
    )


@pytest.fixture(scope="module")
def prior_dataset(synth_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("prior-cache")
    return ingest(synth_manifest, cache, _config("nmar"), progress=False).path


def test_ingest_stores_nmar_beside_the_unchanged_raw_ct(
    prior_dataset: Path, dataset_path: Path
) -> None:
    plain, prior = SliceDataset(dataset_path), SliceDataset(prior_dataset)
    assert prior.info["ct_prior"] == "nmar" and plain.info["ct_prior"] == "none"
    assert prior.info["key"] != plain.info["key"]
    data = prior.read(np.arange(len(prior)), READ)
    np.testing.assert_array_equal(data["ct"], plain.read(np.arange(len(plain)), ["ct"])["ct"])
    for subject in np.unique(data["subject_id"]):
        rows = data["subject_id"] == subject
        metal = data["metal_mask"][rows] > 0
        window = (float(data["ct_min"][0]), float(data["ct_max"][0]))
        expected = prior_of_slices("nmar", data["ct"][rows], metal, data["spacing_x"][rows], window)
        np.testing.assert_array_equal(data["ct_prior"][rows], expected)
    has_metal = data["metal_mask"].reshape(len(data["ct"]), -1).any(axis=1)
    assert not np.array_equal(data["ct_prior"][has_metal], data["ct"][has_metal])
    np.testing.assert_array_equal(data["ct_prior"][~has_metal], data["ct"][~has_metal])


def test_a_bad_prior_is_refused_in_one_line(synth_manifest: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(IngestError, match=r"--ct-prior must be one of none, li, nmar, got 'x'"):
        _config("x")
    argv = ["ingest", "--manifest", str(synth_manifest), "--out", str(tmp_path), "--ct-prior", "x"]
    with pytest.raises(SystemExit):
        main(argv)
    assert "invalid choice: 'x'" in capsys.readouterr().err


def test_a_model_trained_after_nmar_is_judged_against_the_raw_ct(
    prior_dataset: Path, dataset_path: Path, tmp_path: Path
) -> None:
    from pipelines.evaluation.evaluate import EvaluationConfig, evaluate
    from pipelines.training.train import train_model
    from pipelines.training.validation import Validator

    config = tiny_config("adn-ct", **{"train.batch_size": 2, "train.epochs": 1})
    run = train_model(prior_dataset, config, tmp_path / "run", progress=False).out_dir
    model = load_model(run / "last.ckpt")
    assert model.config.data.ct_prior == "nmar"
    stored = Validator(SliceDataset(prior_dataset), ("ct",), "test", ct_prior="nmar")
    computed = Validator(SliceDataset(dataset_path), ("ct",), "test", ct_prior="nmar")
    raw = Validator(SliceDataset(dataset_path), ("ct",), "test")
    np.testing.assert_array_equal(stored.inputs, computed.inputs)  # the column, or made now
    assert not np.array_equal(stored.inputs, raw.inputs)
    assert stored.baseline == raw.baseline  # No MAR is the raw CT either way
    assert raw.prior_baseline == {} and stored.prior_baseline == computed.prior_baseline
    logged = stored(model, epoch=1)
    assert logged["val/prior/psnr_ct_near"] > logged["val/nomar/psnr_ct_near"] + 1.0  # NMAR helps
    assert "val/prior/psnr_mri" not in logged and "val/prior/psnr_ct" not in raw(model, epoch=1)
    curves = bench_module("prior_seed_curves")  # the prior recomputed, as for older runs
    prior = curves.prior_metrics(str(prior_dataset), "nmar")
    _, values = curves.curves(run, prior)["psnr_ct_near"]
    trained = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    gain = trained["val/psnr_ct_near"] - trained["val/prior/psnr_ct_near"]
    assert values[-1] == pytest.approx(gain)
    settings = EvaluationConfig(dice=False, device="cpu")
    tables = [
        evaluate(data, {"hybrid": model}, tmp_path / name, settings, progress=False)
        .summaries["ground_truth"]
        .set_index(["method", "modality", "metric", "region"])["mean"]
        for name, data in (("plain", dataset_path), ("prior", prior_dataset))
    ]
    same = np.allclose(tables[0].sort_index(), tables[1].sort_index(), rtol=0, atol=1e-4)
    assert same, (tables[0], tables[1])  # every row, the hybrid's included
    methods = set(tables[0].index.get_level_values("method"))
    assert {"No MAR", "NMAR", "hybrid"} <= methods
