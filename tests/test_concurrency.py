"""Three sweeps on one new embedded sqlite store at the same moment: the store, its experiment
and every run are created once, nothing is lost or duplicated, and each driver ends without
leaving a Ray process behind (the normal-exit path of tests/test_preflight.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from conftest import left_behind, tiny_sweep_command

from tune import tracking
from tune.local_ray import Process, descendants


@pytest.mark.slow
def test_three_sweeps_on_one_new_store(dataset_path: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "sweep.yaml").write_text("baselines: []\n")
    flags = ("--trials", "1", "--epochs", "1", "--max-concurrent", "1")
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
    seen: set[Process] = set()  # every Ray process the drivers start (normal exit: none left)
    while any(d.poll() is None for d in drivers):
        for driver in drivers:
            seen |= descendants(driver.pid)
        time.sleep(0.3)
    errors = [d.communicate(timeout=60)[1] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0, 0], "\n".join(e[-1500:] for e in errors)
    assert seen, "the drivers started no Ray runtime"
    left = left_behind(seen)
    assert not left, f"Ray processes alive 5 s after their drivers exited: {left}"
    experiment_id = tracking.ensure_experiment(uri, "together")
    parents = tracking.find_runs(uri, experiment_id, {tracking.ROLE: "sweep"})
    assert sorted(p.data.tags[tracking.SWEEP] for p in parents) == [f"t-{i}" for i in range(3)]
    for parent in parents:
        assert parent.info.status == "FINISHED"
        sweep = parent.data.tags[tracking.SWEEP]
        trials = tracking.trial_runs(uri, experiment_id, sweep)
        assert len(trials) == 1, sweep
        assert {t.data.tags[tracking.PARENT] for t in trials} == {parent.info.run_id}
