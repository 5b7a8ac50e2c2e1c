"""`madn train` on an ingested dataset: outputs, exact resume, config files and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from madn_core.checkpoint import load_checkpoint
from pipelines.training.train import train_model
from tune.cli import main

TINY = ["--base-channels", "8", "--num-res", "1", "--lr", "2e-4", "--batch-size", "2"]


def test_cli_trains_and_writes_run_folder(dataset_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(dataset_path),
            "--variant",
            "madn",
            "--epochs",
            "1",
            "--similarity",
            "cc",
            "--no-full-cycle",
            "--residual-channels",
            "mri",
            "--out",
            str(out),
            *TINY,
        ]
    )
    assert code == 0
    assert "val/score" in capsys.readouterr().out
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    for key in (
        "val/score",
        "val/psnr_ct",
        "val/psnr_mri_near",
        "val/sigma_ct",
        "val/abs_sim",
        "val/nomar/psnr_ct",
        "train/g_total",
        "train/sim",
    ):
        assert math.isfinite(metrics[key]), key
    assert "train/self_synthesis" not in metrics  # --no-full-cycle: madn without eq. 7's term
    config = json.loads((out / "config.json").read_text())["model"]
    assert config["loss"]["similarity"] == "cc" and config["image_size"] == 32
    assert config["loss"]["full_cycle"] is False and config["network"]["residual"] is True
    assert config["network"]["residual_channels"] == ["mri"]  # naming channels implies --residual
    assert (out / "samples.png").stat().st_size > 1000
    assert code == 0 and main(["train", "--data", str(dataset_path), "--out", str(out), *TINY]) == 2
    assert "pass --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--residual-channels", "pet"])
    assert "must be ct, mri or ct,mri, got 'pet'" in capsys.readouterr().err


def test_resume_is_bit_exact(dataset_path: Path, tmp_path: Path) -> None:
    config = tiny_config("multichannel", **{"train.batch_size": 2, "train.epochs": 2})
    straight = train_model(dataset_path, config, tmp_path / "a", progress=False)
    first = config.with_overrides({"train.epochs": 1})
    train_model(dataset_path, first, tmp_path / "b", progress=False)
    resumed = train_model(dataset_path, config, tmp_path / "b", resume=True, progress=False)
    assert [h["train/g_total"] for h in straight.history] == [
        h["train/g_total"] for h in resumed.history
    ]
    a = load_checkpoint(straight.checkpoint)["model"]
    b = load_checkpoint(resumed.checkpoint)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_single_channel_variant_and_config_file(dataset_path: Path, tmp_path: Path) -> None:
    settings = tmp_path / "train.yaml"
    settings.write_text(
        f"data: {dataset_path}\nvariant: adn-ct\nepochs: 1\nbase_channels: 8\nnum_res: 1\n"
        f"batch_size: 2\nout: {tmp_path / 'ct'}\n"
    )
    assert main(["train", "--config", str(settings), "--lr", "1e-4"]) == 0
    config = json.loads((tmp_path / "ct" / "config.json").read_text())["model"]
    assert config["variant"] == "adn-ct" and config["optim"]["lr"] == 1e-4
    metrics = json.loads((tmp_path / "ct" / "metrics.jsonl").read_text())
    assert math.isfinite(metrics["val/score"])


def test_bad_input(dataset_path: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no dataset.json" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x\nlearning_rate: 3\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown setting(s) learning_rate" in capsys.readouterr().err
    with pytest.raises(ValueError, match="image_size 64 does not match"):
        train_model(dataset_path, tiny_config().with_overrides({"image_size": 64}), tmp_path / "y")
