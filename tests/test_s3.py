"""Shards and Tune storage on an S3-compatible object store, as on a cluster without a shared
disk: a local S3 server process (moto_server, speaking the S3 HTTP API on loopback), reached
through pyarrow's S3 filesystem with `?endpoint_override=...&scheme=http` URIs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest
from local_cluster import sweep_command

from pipelines.data.dataset import DatasetError, SliceDataset
from pipelines.data.locations import join_uri, redact
from tune import tracking

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "madn-test",
    "AWS_SECRET_ACCESS_KEY": "madn-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """host:port of an S3 server started for this module (its own session, killed at the end)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "moto_server exited"
                assert time.monotonic() < deadline, "moto_server did not answer"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def s3_dataset(s3_endpoint: str, dataset_path: Path) -> Iterator[str]:
    """`dataset_path` copied to s3://madn/cache/<key>; its URI."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in CREDENTIALS.items():
            env.setenv(key, value)
        s3 = pafs.S3FileSystem(
            endpoint_override=s3_endpoint, scheme="http", allow_bucket_creation=True
        )
        s3.create_dir("madn")
        pafs.copy_files(
            str(dataset_path), f"madn/cache/{dataset_path.name}", destination_filesystem=s3
        )
        yield f"s3://madn/cache/{dataset_path.name}?endpoint_override={s3_endpoint}&scheme=http"


def test_locations_join_and_redact() -> None:
    assert join_uri("s3://b/ray/?scheme=http", "sweep") == "s3://b/ray/sweep?scheme=http"
    assert join_uri("/shared/ray", "sweep", "t1") == "/shared/ray/sweep/t1"
    assert redact("s3://KEY:SECRET@bucket/cache?scheme=http") == "s3://***@bucket/cache?scheme=http"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_dataset_reads_the_same_slices_from_s3(s3_dataset: str, dataset_path: Path) -> None:
    remote, local = SliceDataset(s3_dataset), SliceDataset(dataset_path)
    assert not remote.local and local.local
    assert remote.info == local.info
    for column in ("subject_id", "slice_index", "split", "has_metal", "shard", "row"):
        np.testing.assert_array_equal(remote.index[column], local.index[column])
    rows = local.select(split="train", has_metal=True)[:5]
    a, b = remote.read(rows, ["ct", "mri"]), local.read(rows, ["ct", "mri"])
    for column in ("ct", "mri"):
        np.testing.assert_array_equal(a[column], b[column])

    missing = s3_dataset.replace("/cache/", "/nowhere/")
    with pytest.raises(DatasetError, match="not a complete madn dataset"):
        SliceDataset(missing)


def test_sweep_reads_shards_and_checkpoints_on_s3(
    s3_dataset: str, s3_endpoint: str, tmp_path: Path
) -> None:
    storage = f"s3://madn/ray?endpoint_override={s3_endpoint}&scheme=http"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = sweep_command(s3_dataset, "on-s3", uri, storage, trials=1, epochs=2, address=None)
    # a local Ray runtime started by the driver: its trials inherit the credentials
    env = {**os.environ, **CREDENTIALS, "MADN_TRACEBACK": "1"}
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    experiment_id = tracking.ensure_experiment(uri, "on-s3")
    runs = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "trial"})
    assert len(runs) == 2 and all(r.data.tags[tracking.OUTCOME] == "finished" for r in runs)
    (parent,) = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"})
    assert parent.data.params["data"] == s3_dataset
    # Tune's experiment state and every trial's checkpoints are in the bucket, none on disk
    s3 = pafs.S3FileSystem(endpoint_override=s3_endpoint, scheme="http")
    stored = [
        info.path
        for info in s3.get_file_info(pafs.FileSelector("madn/ray/on-s3", recursive=True))
        if info.type == pafs.FileType.File
    ]
    assert any(p.endswith("last.ckpt") for p in stored)
    assert {p.split("/")[3] for p in stored if p.endswith("last.ckpt")} >= {
        p.split("/")[3] for p in stored if "run_trial" in p
    }
    assert any(Path(p).name.startswith("experiment_state") for p in stored)
    assert not (tmp_path / "runs").exists()

    # promotion scores the winner on the test split it reads from the bucket (the sweep's --data)
    from mlflow import MlflowClient

    from tune.cli import main

    code = main(
        [
            *("promote", "--experiment", "on-s3", "--model-name", "s3-model"),
            *("--tracking-uri", uri, "--min-gain", "-1000"),  # tiny model: storage is the point
        ]
    )
    assert code == 0
    champion = MlflowClient(uri).get_model_version_by_alias("s3-model", "champion")
    assert champion.tags["decision"] == "champion"
