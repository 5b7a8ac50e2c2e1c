"""Test helpers around the infra/local scripts: start a local multi-node Ray cluster and an MLflow
tracking server exactly as a user would, and always stop what was started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

INFRA = Path(__file__).resolve().parents[1] / "infra" / "local"
BIN = Path(sys.executable).parent
T = TypeVar("T")


@dataclass(frozen=True)
class LocalCluster:
    """What the scripts printed and wrote: the Ray address (host:port), the Ray Client URL
    (ray://host:port), the job-submission URL (empty without a dashboard), the MLflow tracking
    URL and the scripts' state folder."""

    state: Path
    address: str
    client: str
    dashboard: str
    mlflow: str

    def env(self) -> dict[str, str]:
        return infra_env(self.state)

    def ray_logs(self, pattern: str, chars: int = 3000) -> str:
        """The ends of the Ray log files matching `pattern` (e.g. "ray_client_server*.err") of
        the running cluster, for failure messages."""
        temp = Path((self.state / "ray-temp-dir").read_text().strip())
        parts = [
            f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
            for log in sorted(temp.glob(f"session_latest/logs/{pattern}"))
        ]
        return "\n".join(parts)

    def pid(self, name: str) -> int:
        """Process group id of a started daemon (ray-head, ray-worker-1, mlflow-server)."""
        return int((self.state / f"{name}.pid").read_text().strip())


def infra_env(state: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the scripts and of every Ray client (the auth token is required)."""
    return {
        **os.environ,
        "MADN_INFRA_STATE": str(state),
        "PYTHON_BIN": sys.executable,
        "RAY": str(BIN / "ray"),
        "MLFLOW": str(BIN / "mlflow"),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(state / "ray-token"),
        "MADN_TRACEBACK": "1",
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra or {}),
    }


def run_script(
    name: str, state: Path, *args: str, timeout: int = 240, extra: dict[str, str] | None = None
) -> str:
    """Run infra/local/<name> and return its stdout; fail the test with its output otherwise."""
    result = subprocess.run(
        ["bash", str(INFRA / name), *args],
        env=infra_env(state, extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def local_cluster(
    state: Path, ray_args: Sequence[str] = (), extra: dict[str, str] | None = None
) -> Iterator[LocalCluster]:
    """A Ray cluster (start-ray-cluster.sh `ray_args`) and an MLflow server, both stopped on exit,
    even when the test failed. `extra`: environment of the Ray nodes (e.g. RAY_* settings)."""
    try:
        run_script("start-ray-cluster.sh", state, *ray_args, extra=extra)
        run_script("start-mlflow-server.sh", state)
        dashboard = state / "dashboard.url"
        yield LocalCluster(
            state=state,
            address=(state / "ray.address").read_text().strip(),
            client=(state / "ray.client").read_text().strip(),
            dashboard=dashboard.read_text().strip() if dashboard.exists() else "",
            mlflow=(state / "mlflow.url").read_text().strip(),
        )
    finally:
        env = infra_env(state)
        subprocess.run(["bash", str(INFRA / "stop-mlflow-server.sh")], env=env, timeout=60)
        subprocess.run(["bash", str(INFRA / "stop-ray-cluster.sh")], env=env, timeout=120)


def session_processes(session_id: int) -> list[int]:
    """Pids of every process in a session: a node started by the scripts (`setsid ray start`) is
    one session holding its raylet, agents and the Ray workers that run its trials."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[3]) == session_id:  # after "pid (comm)": state ppid pgrp session
            pids.append(int(stat.parent.name))
    return pids


def kill_session(session_id: int) -> int:
    """SIGKILL every process of a session at once, the way a machine that dies loses them all;
    the number of processes killed."""
    pids = session_processes(session_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def sweep_command(
    data: Path | str,
    experiment: str,
    tracking_uri: str,
    storage: Path | str,
    *,
    trials: int,
    epochs: int,
    address: str | None = "auto",
    extra: Sequence[str] = (),
) -> list[str]:
    """`madn sweep` with tiny networks on the running cluster (`--address auto` inside `ray job
    submit`, or the cluster's address for a driver started here; None: a local Ray runtime of
    the driver's own). ASHA's grace period is the whole schedule, so no trial stops early."""
    return [
        sys.executable,
        "-m",
        "tune.cli",
        "sweep",
        *(["--address", address] if address else []),
        "--data",
        str(data),
        "--trials",
        str(trials),
        "--epochs",
        str(epochs),
        "--grace-period",
        str(epochs),
        "--max-concurrent",
        "2",
        "--experiment",
        experiment,
        "--tracking-uri",
        tracking_uri,
        "--storage",
        str(storage),
        "--base-channels",
        "8",
        "--num-res",
        "1",
        *extra,
    ]


def wait_until(
    probe: Callable[[], T | None],
    timeout_s: float,
    what: str,
    alive: Callable[[], bool],
    interval_s: float = 0.5,
) -> T:
    """Poll `probe` every `interval_s` until it returns something truthy; fail after `timeout_s`
    or as soon as `alive()` is false (the process under test ended early)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        assert alive(), f"the sweep ended before {what}"
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
