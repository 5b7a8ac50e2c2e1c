"""How often does a Ray Client driver fail to start? (issue 17, item 5; docs/reliability.md)

    python bench/ray_client_loop.py [--connects 20] [--sweeps 3]

Starts the local 2-node cluster of infra/local (token auth, MLflow server), then
- `--connects` times: a fresh Python process connects through `ray://`, runs one task on the
  cluster and disconnects (the head starts a Ray Client server per connecting driver: the start
  that failed once in tests/test_cluster.py);
- `--sweeps` times: a tiny `madn sweep --address ray://...` (1 trial, 1 epoch, 32 px), as
  tests/test_cluster.py::test_ray_client_address_runs_trials_on_both_nodes runs it, without
  `madn sweep`'s own retry of the connection being needed to pass (it is counted).
Prints each attempt, the count of failures, and for a failure the end of the Ray Client server
logs. The driver's retry (tune/sweep.py `_init_ray`) is reported, not hidden: a connection that
needed it counts as a failed first attempt.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from local_cluster import LocalCluster, local_cluster  # noqa: E402

CONNECT = """
import sys, ray
ray.init(sys.argv[1], logging_level="ERROR")
print(ray.get(ray.remote(lambda: 1 + 1).remote()))
ray.shutdown()
"""


def connect_once(cluster: LocalCluster) -> tuple[bool, float, str]:
    """One Ray Client connection in a fresh process: (ok, seconds, stderr tail)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CONNECT, cluster.client],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    ok = done.returncode == 0 and done.stdout.strip().endswith("2")
    return ok, time.monotonic() - start, done.stderr[-1500:]


def sweep_once(
    cluster: LocalCluster, data: Path, folder: Path, index: int
) -> tuple[bool, float, str]:
    """One tiny sweep through Ray Client: (ok, seconds, stderr tail)."""
    command = [
        *(str(Path(sys.executable).parent / "madn"), "sweep", "--data", str(data)),
        *("--address", cluster.client, "--tracking-uri", cluster.mlflow),
        *("--experiment", "client-loop", "--name", f"loop-{index}", "--storage", str(folder)),
        *("--trials", "1", "--epochs", "1", "--base-channels", "8", "--num-res", "1"),
    ]
    start = time.monotonic()
    done = subprocess.run(command, env=cluster.env(), capture_output=True, text=True, timeout=600)
    retried = "trying again" in done.stderr  # tune/sweep.py `_init_ray` says so on a retry
    return done.returncode == 0 and not retried, time.monotonic() - start, done.stderr[-1500:]


def tiny_dataset(folder: Path) -> Path:
    """A 32 px dataset of 8 subjects (the tests' size), synthesized and ingested here."""
    madn = str(Path(sys.executable).parent / "madn")
    synth, cache = folder / "synth", folder / "cache"
    subprocess.run(
        [madn, "synth", "--out", str(synth), "--subjects", "8", "--size", "64", "--slices", "2"],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [
            *(madn, "ingest", "--manifest", str(synth / "manifest.csv"), "--out", str(cache)),
            *("--size", "32", "--register", "none", "--test-subjects", "2"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=20)
    parser.add_argument("--sweeps", type=int, default=3)
    args = parser.parse_args()
    failures = {"connect": 0, "sweep": 0}
    with tempfile.TemporaryDirectory(prefix="madn-client-") as tmp:
        folder = Path(tmp)
        data = tiny_dataset(folder) if args.sweeps else None
        with local_cluster(folder / "infra") as cluster:
            attempts = [("connect", i) for i in range(args.connects)]
            attempts += [("sweep", i) for i in range(args.sweeps)]
            for kind, i in attempts:
                if kind == "connect":
                    ok, seconds, err = connect_once(cluster)
                else:
                    ok, seconds, err = sweep_once(cluster, data, folder / "ray", i)
                print(f"{kind} {i + 1}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s", flush=True)
                if not ok:
                    failures[kind] += 1
                    print(err, cluster.ray_logs("ray_client_server*"), sep="\n", flush=True)
    print(
        f"Ray Client: {failures['connect']} of {args.connects} connections and "
        f"{failures['sweep']} of {args.sweeps} sweeps failed ({time.strftime('%Y-%m-%d')})"
    )
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
