"""The MADN training loop: generator step, then discriminator step, with callbacks and resume.

`Trainer.fit` iterates any source of (corrupted, clean) batch pairs, each (B, C, H, W) in
[-1, 1]. The source is either a re-iterable (used as is every epoch) or a function
`epoch -> iterable`, which is how a data layer makes each epoch's order a function of the seed
and the epoch alone; together with the saved RNG and optimiser states this makes a resumed run
repeat the uninterrupted one exactly (on CPU).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from madn_core.checkpoint import (
    CheckpointError,
    config_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from madn_core.config import MADNConfig
from madn_core.correction import fill_metal, find_metal
from madn_core.ema import WeightAverage
from madn_core.model import MADN

Batch = tuple[torch.Tensor, torch.Tensor]
BatchSource = Iterable[Batch] | Callable[[int], Iterable[Batch]]
Validator = Callable[[MADN, int], dict[str, float]]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the terms and the step."""


class TrainerCallback:
    """Hooks the training loop calls; override what you need (the default does nothing).

    on_step: after every optimisation step, with every loss term by name (floats).
    on_epoch: after every epoch, with the epoch's mean training losses ("train/<term>") and the
    validator's metrics; a callback may call `trainer.request_stop()` to end training there.
    """

    def on_step(self, trainer: Trainer, step: int, losses: dict[str, float]) -> None:
        """Called after optimisation step `step` (1-based)."""

    def on_epoch(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        """Called after epoch `epoch` (1-based) and after its checkpoint was written."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA if available, else CPU; "cuda" without a GPU raises a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA GPU is available")
    return torch.device(name)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    random.setstate(state["python"])


class Trainer:
    """Owns a MADN model, its three Adam optimisers, the step/epoch counters and the callbacks."""

    def __init__(
        self,
        config: MADNConfig,
        callbacks: Sequence[TrainerCallback] = (),
        device: str | torch.device | None = None,
    ) -> None:
        self.config = config
        seed_everything(config.train.seed)
        self.device = (
            torch.device(device) if device is not None else resolve_device(config.train.device)
        )
        self.model = MADN(config).to(self.device)
        self.memory_format = (
            torch.channels_last if config.train.channels_last else torch.contiguous_format
        )
        if config.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        optim = config.optim

        def adam(parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Adam:
            return torch.optim.Adam(
                parameters,
                lr=optim.lr,
                betas=(optim.beta1, optim.beta2),
                weight_decay=optim.weight_decay,
            )

        self.ema = (
            WeightAverage(self.model, config.train.ema_decay) if config.train.ema_decay else None
        )
        self.optimizer_g = adam(self.model.generator_parameters())
        self.optimizer_d_clean = adam(self.model.discriminator_clean.parameters())
        self.optimizer_d_corrupt = adam(self.model.discriminator_corrupt.parameters())
        self.callbacks = list(callbacks)
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self._stop_requested = False

    # -- one step ---------------------------------------------------------------------------
    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.train.amp)

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        return (
            batch.to(self.device, non_blocking=True)
            .float()
            .contiguous(memory_format=self.memory_format)
        )

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        values = dict(
            zip(
                terms,
                torch.stack([t.detach().float() for t in terms.values()]).tolist(),
                strict=True,
            )
        )
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step + 1}: "
                + ", ".join(f"{name}={values[name]}" for name in bad)
                + " (lower the learning rate or check the input data for NaN/inf)"
            )
        return values

    def train_step(self, corrupted: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
        """One generator step, then one step of each discriminator on detached fakes.

        corrupted, clean: (B, C, H, W) unpaired batches in [-1, 1]. Returns every loss term by
        name as floats; raises NonFiniteLossError before any weight is updated with a NaN.
        """
        model = self.model
        model.train()
        corrupted, clean = self._to_device(corrupted), self._to_device(clean)
        if model.config.network.metal_fill:  # the network never sees metal (madn_core.correction)
            corrupted = fill_metal(model.config, corrupted, find_metal(model.config, corrupted))
        discriminators = model.discriminators()
        for module in discriminators:
            module.requires_grad_(False)
        with self._autocast():
            g_terms, outputs = model.generator_loss(corrupted, clean)
        g_values = self._check_finite(g_terms)
        self.optimizer_g.zero_grad(set_to_none=True)
        g_terms["g_total"].backward()
        self.optimizer_g.step()

        for module in discriminators:
            module.requires_grad_(True)
        with self._autocast():
            d_terms = model.discriminator_loss(corrupted, clean, outputs)
        d_values = self._check_finite(d_terms)
        self.optimizer_d_clean.zero_grad(set_to_none=True)
        self.optimizer_d_corrupt.zero_grad(set_to_none=True)
        d_terms["d_total"].backward()
        self.optimizer_d_clean.step()
        self.optimizer_d_corrupt.step()
        if self.ema is not None:
            self.ema.update(model)
        self.step += 1
        return {**g_values, **d_values}

    @property
    def inference_model(self) -> MADN:
        """The weights to validate and export: the EMA copy when enabled, else the live model."""
        return self.ema.model if self.ema is not None else self.model  # type: ignore[return-value]

    # -- the loop ---------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask `fit` to stop after the current epoch's callbacks."""
        self._stop_requested = True

    def fit(
        self,
        batches: BatchSource,
        epochs: int | None = None,
        validate: Validator | None = None,
        checkpoint_path: str | os.PathLike[str] | None = None,
    ) -> list[dict[str, float]]:
        """Train until `epochs` (default config.train.epochs) epochs are complete in total.

        After each epoch: run `validate(model, epoch)` without gradients (on every
        `config.train.val_every`-th epoch and the last one), write the checkpoint to
        `checkpoint_path` (if given), then call each callback's on_epoch. Returns the history
        of per-epoch metrics (training means as "train/<term>", plus the validator's keys on
        the epochs it ran).
        """
        total_epochs = self.config.train.epochs if epochs is None else epochs
        self._stop_requested = False
        while self.epoch < total_epochs and not self._stop_requested:
            epoch = self.epoch + 1
            source = batches(epoch) if callable(batches) else batches
            sums: dict[str, float] = {}
            count = 0
            for corrupted, clean in source:
                values = self.train_step(corrupted, clean)
                count += 1
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value
                for callback in self.callbacks:
                    callback.on_step(self, self.step, values)
            if count == 0:
                raise ValueError(f"epoch {epoch} produced no batches: is the training set empty?")
            metrics = {f"train/{name}": value / count for name, value in sums.items()}
            if validate is not None and self.validates(epoch, total_epochs):
                model = self.inference_model
                model.eval()
                with torch.no_grad(), self._autocast():
                    metrics.update(validate(model, epoch))
                self.model.train()
            self.epoch = epoch
            self.history.append(metrics)
            if checkpoint_path is not None:
                self.save(checkpoint_path)
            for callback in self.callbacks:
                callback.on_epoch(self, epoch, metrics)
        return self.history

    def validates(self, epoch: int, total_epochs: int | None = None) -> bool:
        """Whether `fit` validates after `epoch` (1-based) of a run of `total_epochs`."""
        last = self.config.train.epochs if total_epochs is None else total_epochs
        return epoch % self.config.train.val_every == 0 or epoch >= last

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d_clean": self.optimizer_d_clean.state_dict(),
            "optimizer_d_corrupt": self.optimizer_d_corrupt.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "history": self.history,
            "rng": _rng_state(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the full training state atomically (see madn_core.checkpoint)."""
        return save_checkpoint(self.state_dict(), path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore the full training state from `path`, written by `save` for the same variant
        and architecture (`MADNConfig.architecture`; the inference-only settings may differ)."""
        payload = load_checkpoint(path, map_location=self.device)
        saved = config_from_checkpoint(payload, path)
        if saved.architecture() != self.config.architecture():
            raise CheckpointError(
                f"{path}: checkpoint is a {saved.variant} model with another architecture than the "
                f"configured {self.config.variant} model"
            )
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer_g.load_state_dict(payload["optimizer_g"])
            self.optimizer_d_clean.load_state_dict(payload["optimizer_d_clean"])
            self.optimizer_d_corrupt.load_state_dict(payload["optimizer_d_corrupt"])
            self.step = int(payload["step"])
            self.epoch = int(payload["epoch"])
            self.history = list(payload.get("history", []))
            _set_rng_state(payload["rng"])
            if self.ema is not None:
                self.ema.load_state_dict(payload["ema"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(
                f"{path}: incomplete or mismatched training checkpoint ({error})"
            ) from error
