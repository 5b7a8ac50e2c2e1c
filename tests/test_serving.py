"""The servable model (`tune.serving`): a pyfunc over scanner-unit slices of any size, logged and
registered in a real sqlite MLflow store, loaded back in process, and served by a real
`madn serve` (`mlflow models serve`) process answering a real HTTP request on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from madn_core.checkpoint import load_model

MODEL = "madn-serve"


@pytest.fixture(scope="module")
def registered(trained_run: Path, dataset_path: str, tmp_path_factory: pytest.TempPathFactory):
    """(tracking URI, model) with `trained_run`'s model registered as MODEL@champion."""
    import mlflow
    from mlflow import MlflowClient

    from tune import tracking
    from tune.registry import example_slice
    from tune.serving import log_servable_model

    folder = tmp_path_factory.mktemp("serving")
    uri = tracking.connect(f"sqlite:///{folder / 'mlflow.db'}")
    model = load_model(trained_run / "last.ckpt")
    experiment_id = tracking.ensure_experiment(uri, "serving")  # artifacts beside the store
    with tracking.fluent_uri(uri):
        with mlflow.start_run(experiment_id=experiment_id):
            example = example_slice(dataset_path, model.config)
            info = log_servable_model(model, example, folder, {"variant": model.config.variant})
        version = mlflow.register_model(info.model_uri, MODEL)
    MlflowClient(uri).set_registered_model_alias(MODEL, "champion", version.version)
    return uri, model


def _slices(metal: bool, height: int = 40, width: int = 52) -> np.ndarray:
    """(1, 2, H, W): CT in HU (a water disc, a titanium rod when `metal`) and an MRI."""
    rows, cols = np.mgrid[:height, :width]
    inside = (rows - height / 2) ** 2 + (cols - width / 2) ** 2 < (min(height, width) / 2.5) ** 2
    ct = np.where(inside, 40.0, -1000.0).astype(np.float32)
    mri = np.where(inside, 300.0, 0.0).astype(np.float32)
    if metal:
        ct[height // 2 - 2 : height // 2 + 2, width // 2 - 2 : width // 2 + 2] = 6000.0
        mri[height // 2 - 3 : height // 2 + 3, width // 2 - 3 : width // 2 + 3] = 0.0
    return np.stack([ct, mri])[None]


def test_pyfunc_corrects_hu_slices_of_any_size(registered) -> None:
    import mlflow.pyfunc

    from tune import tracking

    uri, model = registered
    with tracking.fluent_uri(uri):
        served = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    signature = served.metadata.signature
    assert signature.inputs.inputs[0].shape == (-1, 2, -1, -1)
    assert {p.name for p in signature.params} == {"spacing_mm", "all_slices"}
    example = np.asarray(served.input_example)
    assert example.shape == (1, 2, model.config.image_size, model.config.image_size)
    assert example[0, 0].min() < -500 and example[0, 0].max() > 0  # a real slice, in HU
    clean = _slices(metal=False)
    out = served.predict(clean, params={"spacing_mm": 2.0})
    assert out.shape == clean.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, clean)  # no metal: returned as it came
    implanted = _slices(metal=True, height=36, width=60)
    out = served.predict(implanted, params={"spacing_mm": 2.0, "all_slices": True})
    assert out.shape == implanted.shape and np.isfinite(out).all()
    assert (out[0, 0][implanted[0, 0] > 3000] == 6000.0).all()  # the implant keeps its HU
    assert np.abs(out - implanted).max() > 1.0  # the network ran


def test_registered_pyfunc_loads_as_a_model(registered) -> None:
    from tune.registry import load_registered_model

    uri, model = registered
    loaded = load_registered_model(f"models:/{MODEL}@champion", uri)
    assert loaded.config.variant == model.config.variant
    assert loaded.config.data.spacing_mm == model.config.data.spacing_mm


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, payload: dict, deadline: float) -> dict:
    """POST JSON to `url`, retrying while the server starts, until `deadline`."""
    body = json.dumps(payload).encode()
    while True:
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return json.loads(reply.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def test_madn_serve_answers_an_http_request(registered, tmp_path: Path) -> None:
    uri, _ = registered
    port = _free_port()
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # the venv is not on PATH
    command = [sys.executable, "-m", "tune.cli", "serve", "-m", f"models:/{MODEL}@champion"]
    server = subprocess.Popen(
        [*command, "--tracking-uri", uri, "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        slices = _slices(metal=True)
        payload = {"inputs": slices.tolist(), "params": {"spacing_mm": 1.5, "all_slices": True}}
        reply = _post(f"http://127.0.0.1:{port}/invocations", payload, time.monotonic() + 180)
        out = np.asarray(reply["predictions"], np.float32)
        assert out.shape == slices.shape
        assert (out[0, 0][slices[0, 0] > 3000] == 6000.0).all()
        assert np.abs(out - slices).max() > 1.0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            output = server.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output = server.communicate()[0].decode(errors="replace")
    assert "serve: models:/" in output, output[-2000:]
