"""A Ray Tune callback in the driver that gives every trial's MLflow run its real final state.

A trial interrupted by ASHA, or one that raised, cannot close its own run (its process is
stopped, or the error escapes), so the driver does it when Tune reports the outcome:
- finished all epochs: FINISHED, `madn.outcome=finished`;
- stopped by the scheduler before the last epoch: FINISHED (nothing failed: ASHA decided it had
  seen enough), `madn.outcome=stopped_early`;
- errored after its retries: FAILED, `madn.outcome=error` and `madn.error` (the first line).
The trial's last persisted checkpoint (best.ckpt, last.ckpt and config.json) is logged to its run as
`checkpoint/`, so stopped and finished trials alike carry their final model.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ray.tune import Callback

from tune import tracking


class MLflowOutcomes(Callback):
    """Closes trial runs (see module doc). `epochs`: the full schedule length."""

    def __init__(
        self,
        uri: str,
        experiment_id: str,
        parent_run_id: str,
        sweep: str,
        epochs: int,
    ) -> None:
        self.uri, self.experiment_id = uri, experiment_id
        self.parent_run_id, self.sweep, self.epochs = parent_run_id, sweep, epochs
        self.outcomes: dict[str, str] = {}

    def _run_id(self, trial: Any) -> str:
        from tune.trainable import trial_params

        return tracking.trial_run(
            self.uri,
            self.experiment_id,
            self.parent_run_id,
            self.sweep,
            trial.trial_id,
            tracking.trial_run_name(trial_params(dict(trial.config)), trial.trial_id),
            trial_params(dict(trial.config)),
        )

    def _log_checkpoint(self, trial: Any, run_id: str) -> None:
        checkpoint = getattr(trial, "checkpoint", None)
        if checkpoint is None:
            return
        folder = Path(tempfile.mkdtemp(prefix="madn-final-"))
        try:
            checkpoint.to_directory(str(folder))
            client = tracking.client(self.uri)
            for name in ("best.ckpt", "last.ckpt", "config.json", "metrics.jsonl"):
                if (folder / name).exists():
                    tracking.with_retries(
                        client.log_artifact, run_id, str(folder / name), "checkpoint"
                    )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        epoch = int((trial.last_result or {}).get("epoch", 0))
        outcome = "finished" if epoch >= self.epochs else "stopped_early"
        run_id = self._run_id(trial)
        self._log_checkpoint(trial, run_id)
        status = "FINISHED"  # an early stop is a scheduling decision, not a failure
        tracking.finish_run(
            self.uri, run_id, status, {tracking.OUTCOME: outcome, "madn.epochs_done": str(epoch)}
        )
        self.outcomes[trial.trial_id] = outcome

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self._run_id(trial)
        self._log_checkpoint(trial, run_id)
        message = "unknown error"
        error_file = getattr(trial, "error_file", None)
        if error_file and Path(error_file).exists():
            lines = [ln for ln in Path(error_file).read_text().splitlines() if ln.strip()]
            message = lines[-1] if lines else message
        tracking.finish_run(
            self.uri, run_id, "FAILED", {tracking.OUTCOME: "error", "madn.error": message[:500]}
        )
        self.outcomes[trial.trial_id] = "error"
