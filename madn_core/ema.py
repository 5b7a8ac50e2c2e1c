"""Exponential moving average (EMA) of a model's weights, for validation and export.

GAN generators oscillate from step to step; the EMA of their weights is smoother and usually
scores better than the last iterate. `WeightAverage(model, decay)` keeps a frozen copy of
`model` whose floating-point parameters and buffers follow

    ema <- ema + (1 - d_t) (weights - ema),   d_t = min(decay, (1 + t) / (10 + t))

after step t (the ramp lets the average forget the random initialisation quickly). Integer
buffers are copied as they are.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """EMA copy of `model` (see module doc); `model` is the averaged nn.Module, in eval mode."""

    def __init__(self, source: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(source).eval()
        self.model.requires_grad_(False)

    def current_decay(self) -> float:
        """d_t for the next update."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        """Move the average one step towards `source` (same architecture)."""
        decay = self.current_decay()
        averaged = self.model.state_dict()
        for name, value in source.state_dict().items():
            target = averaged[name]
            if target.dtype.is_floating_point:
                target.lerp_(value.detach().to(target.dtype), 1.0 - decay)
            else:
                target.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
