"""Checks the sweep driver runs before any trial or MLflow run: a sweep that can never run says
so in one line at once, instead of failing in every worker or waiting forever.

- `check_dataset`: the train split of the dataset has slices with and without metal for every
  channel a trial can draw, at least one batch of them, and the settings fit its image size.
- `check_resources`: one trial's CPUs and GPUs fit in at least one alive node of the Ray
  cluster (unless the cluster autoscales, when `--pending-timeout` is the guard instead).
- `PendingState` with `PendingCallback` and `PendingStopper`: end the sweep when a trial has been
  pending for `--pending-timeout` seconds while no trial runs (resources that never come).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ray.tune import Callback, Stopper

from madn_core.config import MADNConfig
from pipelines.data.dataset import (
    Augment,
    SliceDataset,
    UnpairedBatches,
    channels_for_variant,
)
from tune.errors import ServiceError
from tune.train_settings import build_config


def drawable_variants(space: Any) -> set[str]:
    """Variants a trial of `space` (a `tune.space.SearchSpace`) can train: the searched variant
    choices (default madn) and every fixed baseline's."""
    searched = {"madn"}
    for parameter in space.parameters:
        if parameter.name == "variant" and parameter.choices is not None:
            searched = {str(choice) for choice in parameter.choices}
    return searched | {str(b.get("variant", "madn")) for b in space.baselines}


def check_dataset(dataset: SliceDataset, model: Mapping[str, Any], variants: Iterable[str]) -> None:
    """Raise a one-line DatasetError (or ConfigError for settings that do not fit the image
    size, e.g. the patch) unless every variant in `variants` can train on the train split with
    the `model` settings (`madn train` flag names: batch_size, patch, ...)."""
    for variant in sorted(set(variants)):
        config: MADNConfig = build_config({**model, "variant": variant}, dataset.size)
        UnpairedBatches(
            dataset,
            split="train",
            channels=channels_for_variant(variant),
            batch_size=config.train.batch_size,
            augment=Augment(crop=config.train.patch or None, focus=config.train.patch_focus),
        )


def _node_summary(node: Mapping[str, Any]) -> str:
    resources = node.get("Resources", {})
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    return f"{node.get('NodeManagerAddress', '?')} {cpus:g} CPU {gpus:g} GPU"


def check_resources(cpus: float, gpus: float, autoscaling: bool = False) -> None:
    """Raise a one-line ServiceError unless one alive node of the connected Ray cluster has
    `cpus` CPUs and `gpus` GPUs for a trial. `autoscaling`: the cluster can add nodes, so a
    request that fits no node today is left to the pending timeout."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for node in nodes:
        resources = node.get("Resources", {})
        if resources.get("CPU", 0) >= cpus and resources.get("GPU", 0) >= gpus:
            return
    if autoscaling:
        return
    have = "; ".join(_node_summary(n) for n in nodes) or "no alive node"
    raise ServiceError(
        f"a trial asks for {cpus:g} CPU and {gpus:g} GPU, but no Ray node has that ({have}); "
        "lower --cpus-per-trial/--gpus-per-trial, add such a node, or pass --autoscaling"
    )


LIVE_STATES: list[PendingState] = []  # every state of this process, restored ones included


def stall_message() -> str | None:
    """The message of any PendingState of this process that ended its sweep, else None."""
    return next((s.message for s in LIVE_STATES if s.message), None)


class PendingState:
    """The stall clock `PendingCallback` updates and `PendingStopper` reads: `message` is set once
    some trial has been PENDING for `timeout_s` seconds while no trial was RUNNING."""

    def __init__(self, timeout_s: float, cpus: float, gpus: float) -> None:
        self.timeout_s = timeout_s
        self.request = f"{cpus:g} CPU and {gpus:g} GPU"
        self.stalled_since: float | None = None
        self.message: str | None = None
        LIVE_STATES.append(self)

    def __getstate__(self) -> dict[str, Any]:
        """A restored sweep (`--resume`) starts a fresh clock: monotonic times do not carry
        across processes."""
        return {"timeout_s": self.timeout_s, "request": self.request}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["timeout_s"], 0, 0)  # type: ignore[misc]
        self.request = state["request"]

    def observe(self, statuses: list[str], now: float | None = None) -> None:
        """Update the clock from the trials' statuses (e.g. ["PENDING", "RUNNING"]); `now` in
        seconds of `time.monotonic`."""
        now = time.monotonic() if now is None else now
        if "RUNNING" in statuses or "PENDING" not in statuses:
            self.stalled_since = None
            return
        if self.stalled_since is None:
            self.stalled_since = now
        elif now - self.stalled_since >= self.timeout_s and self.message is None:
            self.message = (
                f"no trial could start for {self.timeout_s:g} s: the Ray cluster never had "
                f"{self.request} free for a trial (raise --pending-timeout if nodes are coming)"
            )


class PendingCallback(Callback):  # type: ignore[misc]
    """Feeds the trials' statuses to a PendingState at every step of the Tune loop."""

    def __init__(self, state: PendingState) -> None:
        self.state = state

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.state.observe([str(t.status) for t in trials])


class PendingStopper(Stopper):  # type: ignore[misc]
    """Ends the whole sweep once the PendingState has a message."""

    def __init__(self, state: PendingState) -> None:
        self.state = state

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.state.message is not None
