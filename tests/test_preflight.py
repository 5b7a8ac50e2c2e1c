"""Sweeps that can never run fail at once in one line, and the driver leaves no Ray process
behind on any exit path: a preflight failure, a pending timeout, SIGINT and SIGTERM (a finished
sweep: tests/test_concurrency.py). Real `madn sweep` processes, each with its own local Ray
runtime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import left_behind, tiny_sweep_command

from madn_core.config import ConfigError
from pipelines.data.dataset import DatasetError, SliceDataset
from tune import tracking
from tune.local_ray import Process, descendants
from tune.preflight import PendingState, check_dataset

MADN = [sys.executable, "-m", "tune.cli"]


def test_pending_state_trips_only_when_nothing_runs() -> None:
    state = PendingState(timeout_s=10, cpus=1, gpus=2)
    state.observe(["PENDING"], now=0.0)
    state.observe(["PENDING", "RUNNING"], now=20.0)  # something runs: the clock restarts
    assert state.message is None
    state.observe(["PENDING"], now=21.0)
    state.observe(["PENDING", "TERMINATED"], now=30.0)
    assert state.message is None
    state.observe(["PENDING"], now=31.0)
    assert "no trial could start for 10 s" in str(state.message)
    assert "1 CPU and 2 GPU" in str(state.message)


def test_dataset_preflight_names_what_cannot_train(dataset_path: Path) -> None:
    dataset = SliceDataset(dataset_path)
    check_dataset(dataset, {"batch_size": 2}, ["madn", "adn-ct"])
    with pytest.raises(DatasetError, match="fewer than the batch size 4096"):
        check_dataset(dataset, {"batch_size": 4096}, ["madn"])
    with pytest.raises(ConfigError, match=r"train\.patch must be 0 or a multiple of 4"):
        check_dataset(dataset, {"patch": 30}, ["adn-ct"])


def _sweep(data: Path, tmp_path: Path, *extra: str) -> subprocess.Popen:
    command = tiny_sweep_command(
        data,
        tmp_path,
        "preflight",
        *("--trials", "1", "--epochs", "1", "--config", str(_no_baselines(tmp_path)), *extra),
    )
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _no_baselines(tmp_path: Path) -> Path:
    config = tmp_path / "sweep.yaml"
    config.write_text("baselines: []\n")
    return config


def _watch(driver: subprocess.Popen, until: float, signal_after: float | None) -> set[Process]:
    """Record the driver's descendants until it exits (signalled with SIGINT/SIGTERM by the
    caller through `signal_after` seconds, when given); the set of processes seen."""
    seen: set[Process] = set()
    start = time.monotonic()
    while driver.poll() is None and time.monotonic() - start < until:
        seen |= descendants(driver.pid)
        if signal_after is not None and time.monotonic() - start > signal_after and seen:
            return seen
        time.sleep(0.2)
    return seen


def _wait_for_parent_run(uri: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            experiment_id = tracking.ensure_experiment(uri, "preflight")
            if tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"}):
                return True
        except Exception:
            pass
        time.sleep(0.5)
    return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "extra", "code", "message"),
    [
        ("preflight", ("--gpus-per-trial", "2"), 2, "a trial asks for 1 CPU and 2 GPU"),
        (
            "pending timeout",
            ("--gpus-per-trial", "2", "--autoscaling", "--pending-timeout", "3"),
            2,
            "no trial could start for 3 s",
        ),
        ("SIGINT", ("--gpus-per-trial", "2", "--autoscaling"), 130, None),
        ("SIGTERM", ("--gpus-per-trial", "2", "--autoscaling"), 130, None),
    ],
)
def test_driver_leaves_no_ray_process_behind(
    dataset_path: Path,
    tmp_path: Path,
    path: str,
    extra: tuple[str, ...],
    code: int,
    message: str | None,
) -> None:
    driver = _sweep(dataset_path, tmp_path, *extra)
    signalled = path.startswith("SIG")
    if signalled:
        assert _wait_for_parent_run(f"sqlite:///{tmp_path / 'mlflow.db'}", 120)
    seen = _watch(driver, until=240, signal_after=1.0 if signalled else None)
    if signalled:
        os.kill(driver.pid, getattr(signal, path))  # the driver only, as `kill PID` does
        seen |= _watch(driver, until=120, signal_after=None)
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == code, stderr[-2000:]
    if message:
        assert message in stderr.strip().splitlines()[-1], stderr[-2000:]
    assert seen, "the driver started no Ray runtime"
    left = left_behind(seen)
    assert not left, f"{path}: Ray processes alive 5 s after the driver exited: {left}"


@pytest.mark.parametrize(
    "args",
    [
        ("promote", "--experiment", "x", "--model-name", "m"),
        ("report", "--experiment", "x", "--out", "report"),
        ("correct", "--model", "models:/m@champion", "--ct", "ct.nii.gz", "--out", "out"),
        ("evaluate", "--model", "models:/m@champion", "--data", "data", "--out", "out"),
    ],
)
def test_unreachable_tracking_server_is_one_line_at_once(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    start = time.monotonic()
    result = subprocess.run(
        [*MADN, *args, "--tracking-uri", "http://127.0.0.1:9"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - start < 60
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    expected = "error: MLflow tracking server http://127.0.0.1:9 is unreachable"
    assert line.startswith(f"madn {args[0]}: {expected}"), result.stderr[-2000:]


def test_read_only_commands_refuse_a_missing_store(tmp_path: Path) -> None:
    result = subprocess.run(
        [*MADN, "report", "--experiment", "x", "--out", "report"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no MLflow store at" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "mlflow.db").exists()
