"""Shared fixtures. Tests use tiny sizes (32-64 px, base width 8) to stay fast on 2 CPU cores."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

from madn_core.config import MADNConfig
from tune.local_ray import Process, is_alive


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


def bench_module(name: str) -> ModuleType:
    """The script bench/<name>.py, imported as a module (bench/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(variant: str = "madn", **overrides: object) -> MADNConfig:
    """A 32x32, base-width-8 model with one residual block: quick to build and train."""
    config = MADNConfig.from_dict(
        {
            "variant": variant,
            "image_size": 32,
            "network": {"base_channels": 8, "num_res": 1, "discriminator_channels": 8},
            "optim": {"lr": 2e-4},
            "train": {"epochs": 2, "batch_size": 4, "seed": 0, "device": "cpu"},
        }
    )
    return config.with_overrides(overrides) if overrides else config


@pytest.fixture(scope="session")
def synth_manifest(tmp_path_factory: pytest.TempPathFactory):
    """8 synthetic subjects (4 implanted), 32 x 32 x 8: the shared raw input of data tests."""
    from pipelines.synth.generate import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("synth")
    config = SynthConfig(subjects=8, metal_fraction=0.5, size=32, slices=8, seed=11)
    return synthesize(config, out, progress=False)


@pytest.fixture(scope="session")
def dataset_path(synth_manifest, tmp_path_factory: pytest.TempPathFactory):
    """`synth_manifest` ingested at 32 px without registration (2 test, 2 val subjects)."""
    from pipelines.data.ingest import IngestConfig, ingest
    from pipelines.data.registration import RegistrationConfig

    config = IngestConfig(
        size=32,
        registration=RegistrationConfig(mode="none"),
        val_fraction=0.25,
        test_subjects="2",
        seed=0,
    )
    return ingest(synth_manifest, tmp_path_factory.mktemp("cache"), config, progress=False).path


@pytest.fixture(scope="session")
def trained_run(dataset_path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny `madn` model trained for one epoch on `dataset_path` (its run folder)."""
    from pipelines.training.train import train_model

    config = tiny_config("madn", **{"train.batch_size": 2, "train.epochs": 1})
    out = tmp_path_factory.mktemp("run")
    return train_model(dataset_path, config, out, progress=False).out_dir


@pytest.fixture(scope="session")
def ray_runtime():
    """One local Ray runtime for the whole session (2 CPUs, no dashboard)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def tiny_sweep_command(data: object, folder: object, experiment: str, *extra: str) -> list[str]:
    """`python -m tune.cli sweep` over `data` with tiny trials (width 8, one residual block)
    and its store and Tune storage in `folder` (sqlite `mlflow.db`, `ray/`); `extra` flags
    (--trials, --epochs, ...) follow."""
    import sys
    from pathlib import Path

    root = Path(str(folder))
    return [
        sys.executable,
        "-m",
        "tune.cli",
        "sweep",
        "--data",
        str(data),
        "--experiment",
        experiment,
        "--tracking-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--storage",
        str(root / "ray"),
        "--base-channels",
        "8",
        "--num-res",
        "1",
        *extra,
    ]


def left_behind(seen: set[Process], grace_s: float = 5.0) -> list[str]:
    """The processes of `seen` still alive `grace_s` seconds from now (polled every 0.2 s, so
    an empty answer comes as soon as the last one exits), as "pid command" strings."""
    deadline = time.monotonic() + grace_s
    while True:
        left = sorted(p for p in seen if is_alive(p))
        if not left or time.monotonic() > deadline:
            return [f"{pid} {_command(pid)}" for pid, _ in left]
        time.sleep(0.2)


def _command(pid: int) -> str:
    """The command line of `pid`, shortened to 80 characters ("?" once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    return text.strip()[:80] or "?"
