"""The ADN decoder (generator): G_I without side inputs, G_Ia with artefact-feature fusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from madn_core.networks.blocks import ConvBlock, ResBlock


class Decoder(nn.Module):
    """num_res residual blocks -> num_up x (nearest x2, 5x5 conv) -> 7x7 conv -> tanh.

    Input code (N, base * 2**num_up, H / 2**num_up, W / 2**num_up); output (N, out_channels, H, W)
    in [-1, 1]. With num_sides > 0 the inputs of the last num_sides layers are each fused with one
    side feature map (concatenate along channels, then a 1x1 convolution back to the layer's
    input width). `forward(code, sides)` takes an encoder's features deepest first and uses the
    last num_sides of them; a decoder built with num_sides=0 takes none. ADN fuses artefact
    features this way; madn also uses it for content skips (see madn_core.model).

    residual=True: the last 7x7 convolution has no tanh and starts at zero, and `forward` adds its
    output to `base`, the (N, out_channels, H, W) image the code was encoded from: the decoder
    predicts a correction, and an untrained decoder is the identity. residual may also be one
    bool per output channel: those channels are residual as above, the others keep the tanh
    (their rows of the last convolution keep the default initialisation).
    """

    def __init__(
        self,
        out_channels: int,
        base_channels: int = 64,
        num_up: int = 2,
        num_res: int = 4,
        num_sides: int = 0,
        res_norm: str = "instance",
        up_norm: str = "layer",
        pad_type: str = "reflect",
        residual: bool | Sequence[bool] = False,
    ) -> None:
        super().__init__()
        mask = [residual] * out_channels if isinstance(residual, bool) else list(residual)
        if len(mask) != out_channels:
            raise ValueError(f"residual: one bool per output channel ({out_channels}), got {mask}")
        self.residual = any(mask)
        self.mixed = self.residual and not all(mask)
        self.register_buffer(
            "residual_mask", torch.tensor(mask).view(1, -1, 1, 1), persistent=False
        )
        channels = base_channels * 2**num_up
        layers: list[nn.Module] = [
            ResBlock(channels, res_norm, "lrelu", pad_type) for _ in range(num_res)
        ]
        in_widths = [channels] * num_res
        for _ in range(num_up):
            layers.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    ConvBlock(channels, channels // 2, 5, 1, 2, up_norm, "lrelu", pad_type),
                )
            )
            in_widths.append(channels)
            channels //= 2
        head = ConvBlock(
            channels, out_channels, 7, 1, 3, "none", "none" if self.residual else "tanh", pad_type
        )
        with torch.no_grad():
            head[1].weight[self.residual_mask.view(-1)] = 0.0
            head[1].bias[self.residual_mask.view(-1)] = 0.0
        layers.append(head)
        in_widths.append(channels)
        if num_sides > len(layers):
            raise ValueError(f"num_sides must be <= {len(layers)} decoder layers, got {num_sides}")
        self.layers = nn.ModuleList(layers)
        self.num_sides = num_sides
        self.fusions = nn.ModuleList(
            nn.Conv2d(2 * width, width, kernel_size=1)
            for width in in_widths[len(layers) - num_sides :]
        )

    def forward(
        self,
        code: torch.Tensor,
        sides: Sequence[torch.Tensor] | None = None,
        base: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.residual and base is None:
            raise ValueError("a residual decoder needs the base image its code was encoded from")
        given = list(sides or [])
        sides = given[len(given) - self.num_sides :] if self.num_sides else []
        if len(sides) != self.num_sides:
            raise ValueError(f"decoder expects {self.num_sides} side features, got {len(sides)}")
        first_fused = len(self.layers) - self.num_sides
        x = code
        for index, layer in enumerate(self.layers):
            if index >= first_fused:
                side = sides[index - first_fused]
                x = self.fusions[index - first_fused](torch.cat([x, side], dim=1))
            x = layer(x)
        if not self.residual:
            return x
        if self.mixed:
            return torch.where(self.residual_mask, base + x, torch.tanh(x))
        return base + x
