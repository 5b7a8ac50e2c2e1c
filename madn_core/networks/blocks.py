"""Convolution and residual blocks of ADN (Liao et al. 2019), and the norms they use."""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """ADN's "layer norm": normalise each sample over (C, H, W), then a per-channel affine map.

    Input and output: (N, C, H, W). The scale is initialised uniform in [0, 1), the shift at 0.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.rand(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        std = flat.std(dim=1).view(-1, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def make_norm(kind: str, channels: int) -> nn.Module:
    """ "instance" (no affine, PyTorch's default), "layer" (LayerNorm2d) or "none"."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "layer":
        return LayerNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be instance, layer or none, got {kind!r}")


def make_activation(kind: str) -> nn.Module:
    """ "relu", "lrelu" (slope 0.2), "tanh" or "none"."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"activation must be relu, lrelu, tanh or none, got {kind!r}")


def make_padding(kind: str, size: int) -> nn.Module:
    """Explicit padding layer: "reflect", "replicate" or "zero"."""
    if size == 0:
        return nn.Identity()
    if kind == "reflect":
        return nn.ReflectionPad2d(size)
    if kind == "replicate":
        return nn.ReplicationPad2d(size)
    if kind == "zero":
        return nn.ZeroPad2d(size)
    raise ValueError(f"padding must be reflect, replicate or zero, got {kind!r}")


class ConvBlock(nn.Sequential):
    """Padding -> Conv2d (with bias) -> norm -> activation.

    (N, in_channels, H, W) -> (N, out_channels, H', W') with H' = (H + 2 pad - k) // stride + 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        norm: str = "none",
        activation: str = "none",
        pad_type: str = "reflect",
    ) -> None:
        super().__init__(
            make_padding(pad_type, padding),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, bias=True),
            make_norm(norm, out_channels),
            make_activation(activation),
        )


class ResBlock(nn.Module):
    """x + ConvBlock(3x3, norm, act)(ConvBlock(3x3, norm, no act)(x)); shape (N, C, H, W) kept."""

    def __init__(
        self, channels: int, norm: str, activation: str, pad_type: str = "reflect"
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(channels, channels, 3, 1, 1, norm, activation, pad_type),
            ConvBlock(channels, channels, 3, 1, 1, norm, "none", pad_type),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
