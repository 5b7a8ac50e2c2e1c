"""A Ray Tune searcher that runs fixed trials (the ablation baselines) before delegating to
another searcher (OptunaSearch). Fixed trials are not reported to the inner searcher, so they
never bias TPE; the whole state survives `Tuner.restore`."""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any

from ray.tune.search import Searcher


class FixedThenSearch(Searcher):
    """Hands out `fixed` configs first (one trial each), then `inner.suggest(...)`."""

    def __init__(self, inner: Searcher, fixed: list[dict[str, Any]]) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.fixed = [dict(f) for f in fixed]
        self.next_fixed = 0
        self.fixed_trials: set[str] = set()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return False  # let ConcurrencyLimiter do it

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.next_fixed < len(self.fixed):
            config = self.fixed[self.next_fixed]
            self.next_fixed += 1
            self.fixed_trials.add(trial_id)
            return dict(config)
        return self.inner.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.fixed_trials:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.fixed_trials:
            self.inner.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            inner_path = os.path.join(folder, "inner.pkl")
            self.inner.save(inner_path)
            with open(inner_path, "rb") as handle:
                inner_state = handle.read()
        state = {
            "fixed": self.fixed,
            "next_fixed": self.next_fixed,
            "fixed_trials": self.fixed_trials,
            "inner": inner_state,
        }
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        self.fixed = state["fixed"]
        self.next_fixed = state["next_fixed"]
        self.fixed_trials = state["fixed_trials"]
        with tempfile.TemporaryDirectory() as folder:
            inner_path = os.path.join(folder, "inner.pkl")
            with open(inner_path, "wb") as handle:
                handle.write(state["inner"])
            self.inner.restore(inner_path)
