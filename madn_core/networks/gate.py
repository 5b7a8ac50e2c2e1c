"""The correction gate: where the artefact-reduced image replaces the input."""

from __future__ import annotations

import torch
from torch import nn


class Gate(nn.Module):
    """(base, corrected) -> g in (0, 1), each (N, C, H, W).

    Sees the input `base` and the change `corrected - base` (both in [-1, 1] units): 7x7, 5x5
    dilated 2 and 5x5 dilated 4 convolutions with LeakyReLU, then a 3x3 convolution and a
    sigmoid; receptive field 33 px (50 mm at 1.5 mm), enough to tell a streak from noise. The
    last convolution starts at zero weights and bias `bias`, so g = sigmoid(bias) everywhere at
    first. `blend(base, corrected)` = g * corrected + (1 - g) * base.
    """

    def __init__(self, channels: int, width: int = 16, bias: float = 0.0) -> None:
        super().__init__()

        def conv(inputs: int, kernel: int, dilation: int) -> nn.Module:
            padding = dilation * (kernel // 2)
            return nn.Conv2d(
                inputs, width, kernel, padding=padding, dilation=dilation, padding_mode="reflect"
            )

        self.features = nn.Sequential(
            conv(2 * channels, 7, 1),
            nn.LeakyReLU(0.2),
            conv(width, 5, 2),
            nn.LeakyReLU(0.2),
            conv(width, 5, 4),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Conv2d(width, channels, kernel_size=3, padding=1, padding_mode="reflect")
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, bias)

    def forward(self, base: torch.Tensor, corrected: torch.Tensor) -> torch.Tensor:
        x = torch.cat([base, corrected - base], dim=1)
        return torch.sigmoid(self.head(self.features(x)))

    def blend(self, base: torch.Tensor, corrected: torch.Tensor) -> torch.Tensor:
        """g * corrected + (1 - g) * base, (N, C, H, W)."""
        gate = self(base, corrected)
        return gate * corrected + (1.0 - gate) * base
