"""Several processes on one new embedded sqlite store at the same moment: the store, its
experiment and every run are created once, and nothing is lost or duplicated."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_sweep_command

from tune import tracking

OPEN_AND_LOG = """
import sys, time
from tune import tracking
start, uri, name = float(sys.argv[1]), sys.argv[2], sys.argv[3]
time.sleep(max(0.0, start - time.time()))
uri = tracking.connect(uri)
experiment_id = tracking.ensure_experiment(uri, "shared")
run = tracking.start_sweep_run(uri, experiment_id, name, resume=False)
tracking.finish_run(uri, run, "FINISHED")
"""


def test_new_store_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    start = time.time() + 8.0  # every process has imported MLflow by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_LOG, str(start), uri, f"sweep-{i}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    errors = [p.communicate(timeout=180)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(e[-1500:] for e in errors)
    experiment_id = tracking.ensure_experiment(uri, "shared")
    runs = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"})
    assert sorted(r.data.tags[tracking.SWEEP] for r in runs) == [f"sweep-{i}" for i in range(4)]


@pytest.mark.slow
def test_three_sweeps_on_one_new_store(dataset_path: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "sweep.yaml").write_text("baselines: []\n")
    flags = ("--trials", "2", "--epochs", "1", "--max-concurrent", "1")
    flags += ("--config", str(tmp_path / "sweep.yaml"))
    drivers = [
        subprocess.Popen(
            tiny_sweep_command(dataset_path, tmp_path, "together", *flags, "--name", f"t-{i}"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    errors = [d.communicate(timeout=600)[1] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0, 0], "\n".join(e[-1500:] for e in errors)
    experiment_id = tracking.ensure_experiment(uri, "together")
    parents = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"})
    assert sorted(p.data.tags[tracking.SWEEP] for p in parents) == [f"t-{i}" for i in range(3)]
    for parent in parents:
        assert parent.info.status == "FINISHED"
        sweep = parent.data.tags[tracking.SWEEP]
        trials = tracking.trial_runs(uri, experiment_id, sweep)
        assert len(trials) == 2, sweep
        assert len({t.data.tags[tracking.TRIAL_ID] for t in trials}) == 2
        assert {t.data.tags[tracking.PARENT] for t in trials} == {parent.info.run_id}
