"""MADN_HOME: where the default MLflow store, Tune storage and run folders go."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune import tracking


def test_madn_home_moves_the_default_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MADN_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    home = tmp_path / "shared" / "madn"
    monkeypatch.setenv("MADN_HOME", str(home))
    assert tracking.resolve_tracking_uri() == f"sqlite:///{home.resolve() / 'mlflow.db'}"
    assert tracking.madn_home() == home
    # an explicit work folder (madn demo --out) and an explicit URI still win
    assert tracking.resolve_tracking_uri(None, tmp_path / "w").endswith("/w/mlflow.db")
    assert tracking.resolve_tracking_uri("sqlite:///x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    uri = tracking.connect()  # creates the store (and MADN_HOME) on first use
    assert (home / "mlflow.db").is_file() and uri.endswith("shared/madn/mlflow.db")


def test_madn_train_writes_its_run_folder_under_madn_home(
    dataset_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tune.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MADN_HOME", str(tmp_path / "home"))
    tiny = ["--base-channels", "8", "--num-res", "1", "--batch-size", "2", "--epochs", "1"]
    assert main(["train", "--data", str(dataset_path), "--variant", "adn-ct", *tiny]) == 0
    assert (tmp_path / "home" / "runs" / "adn-ct" / "best.ckpt").is_file()
    assert not (tmp_path / "runs").exists()
