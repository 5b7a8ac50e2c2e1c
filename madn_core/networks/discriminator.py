"""PatchGAN discriminator (pix2pix's NLayerDiscriminator as configured by ADN)."""

from __future__ import annotations

import torch
from torch import nn

from madn_core.networks.blocks import ConvBlock


class PatchDiscriminator(nn.Module):
    """(N, in_channels, H, W) -> logits map (N, 1, H', W'), one per overlapping patch.

    With n_layers=2: 4x4 s2 (no norm) -> 4x4 s2 -> 4x4 s1 -> 4x4 s1 to one channel; zero padding 1,
    LeakyReLU 0.2, receptive field 34x34 pixels. Widths ndf * 2**i, capped at 8 * ndf.
    """

    def __init__(
        self, in_channels: int, ndf: int = 64, n_layers: int = 2, norm: str = "instance"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(in_channels, ndf, 4, 2, 1, "none", "lrelu", "zero")]
        channels = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers.append(ConvBlock(channels, out, 4, stride, 1, norm, "lrelu", "zero"))
            channels = out
        layers.append(ConvBlock(channels, 1, 4, 1, 1, "none", "none", "zero"))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
