"""Synthetic MRI signal voids on clean images, for the void-inpainting term (`loss.lambda_void`).

Near a metal implant an MRI loses its signal: dephasing and the readout displacement leave a
dark region of a few centimetres around the metal (docs/synthesis.md). ADN can only learn to
remove an artefact that its artefact branch learns to draw, and at CPU budgets that branch draws
CT streaks but not the void (docs/model.md, ablation 8). The void term teaches the correction
path what a void hides without any artefact model: on a clean batch y, the MRI channel is
blanked (set to -1, the no-signal end of the [-1, 1] range) inside one random disc per image,
and G_I(E_Ia(.)) must give y back there. Everything it knows inside the disc comes from the CT
channel at the same place and from the MRI around it: an inpainting task, like the masked
inputs of self-supervised image models.
"""

from __future__ import annotations

import torch

from madn_core.correction import fill_channel

NO_SIGNAL = -1.0  # the MRI value of a signal void in the [-1, 1] range


def random_discs(
    count: int, height: int, width: int, max_radius_px: float, device: torch.device | str
) -> torch.Tensor:
    """(count, 1, height, width) bool masks, one filled disc each.

    Each centre is uniform in the middle half of the image (where implant-centred patches hold
    the hip), each radius uniform in [max_radius_px / 4, max_radius_px] pixels. Uses the
    global torch generator, so a seeded training draws the same discs."""
    if max_radius_px <= 0:
        raise ValueError(f"max_radius_px must be > 0, got {max_radius_px}")
    uniform = torch.rand(count, 3, device=device)
    centre_y = (0.25 + 0.5 * uniform[:, 0]) * (height - 1)
    centre_x = (0.25 + 0.5 * uniform[:, 1]) * (width - 1)
    radius = max_radius_px * (0.25 + 0.75 * uniform[:, 2])
    rows = torch.arange(height, device=device, dtype=torch.float32)[None, :, None]
    cols = torch.arange(width, device=device, dtype=torch.float32)[None, None, :]
    distance2 = (rows - centre_y[:, None, None]) ** 2 + (cols - centre_x[:, None, None]) ** 2
    return (distance2 <= radius[:, None, None] ** 2)[:, None]


def blank_channel(images: torch.Tensor, channel: int, masks: torch.Tensor) -> torch.Tensor:
    """A copy of (N, C, H, W) `images` with `channel` set to NO_SIGNAL where the (N, 1, H, W)
    bool `masks` are true; the other channels are unchanged."""
    return fill_channel(images, channel, masks, NO_SIGNAL)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over the true pixels of the (N, 1, H, W) `masks`, for (N, 1, H, W)
    images; 0 when no pixel is masked."""
    weights = masks.to(pred.dtype)
    total = ((pred.float() - target.float()).abs() * weights).sum()
    return total / weights.sum().clamp_min(1.0)
