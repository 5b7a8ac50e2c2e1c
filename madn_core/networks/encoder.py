"""The ADN encoder (used three times: E_I and E_Ia for content, E_a for the artefact)."""

from __future__ import annotations

import torch
from torch import nn

from madn_core.networks.blocks import ConvBlock, ResBlock


class Encoder(nn.Module):
    """conv0 7x7 -> num_down x (4x4 stride 2) -> num_res residual blocks.

    Input (N, in_channels, H, W). `forward` returns (code, features): code is
    (N, base * 2**num_down, H / 2**num_down, W / 2**num_down) and features lists every layer's
    output, deepest first (the last entry is conv0's full-resolution output). ReLU and instance
    norm by default; 7x7 and 4x4 convolutions use reflection padding.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 64,
        num_down: int = 2,
        num_res: int = 4,
        norm: str = "instance",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            ConvBlock(in_channels, base_channels, 7, 1, 3, norm, "relu", pad_type)
        ]
        channels = base_channels
        for _ in range(num_down):
            layers.append(ConvBlock(channels, channels * 2, 4, 2, 1, norm, "relu", pad_type))
            channels *= 2
        layers.extend(ResBlock(channels, norm, "relu", pad_type) for _ in range(num_res))
        self.layers = nn.ModuleList(layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features: list[torch.Tensor] = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        features.reverse()
        return x, features
