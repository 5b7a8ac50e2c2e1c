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

Two void shapes (`loss.void_shape`):
- "disc": the MRI is set to exactly NO_SIGNAL inside a hard-edged disc (ablation 9).
- "soft": the signal fades smoothly from the disc's rim to a core of a third to two thirds of
  its radius, where only a Rayleigh noise floor is left (the magnitude of complex Gaussian
  noise of std FLOOR_STD, in [-1, 1] units). A real void is soft-edged and noisy: the
  magnitude image of a coil never reaches zero, and the signal loss grows with the field
  offset towards the metal (docs/synthesis.md). A network trained on exact -1 discs can learn
  that exact value as its cue for "void" and stop filling the noisy voids it meets
  (docs/model.md, ablation 19).
"""

from __future__ import annotations

import torch

from madn_core.config import VOID_SHAPES
from madn_core.correction import fill_channel

NO_SIGNAL = -1.0  # the MRI value of a signal void in the [-1, 1] range
FLOOR_STD = 0.03  # noise std of the soft void's floor, [-1, 1] units (about 1.5 % of the range)


def random_disc_distances(
    count: int,
    height: int,
    width: int,
    max_radius_px: float,
    device: torch.device | str,
    extra_draws: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(distance2 (count, height, width) px^2 from each disc's centre, radius (count,) px,
    extra (count, extra_draws) further uniform draws in [0, 1)) for one random disc per image.

    Each centre is uniform in the middle half of the image (where implant-centred patches hold
    the hip), each radius uniform in [max_radius_px / 4, max_radius_px] pixels. Uses the
    global torch generator (one draw of count x (3 + extra_draws)), so a seeded training draws
    the same discs."""
    if max_radius_px <= 0:
        raise ValueError(f"max_radius_px must be > 0, got {max_radius_px}")
    uniform = torch.rand(count, 3 + extra_draws, device=device)
    centre_y = (0.25 + 0.5 * uniform[:, 0]) * (height - 1)
    centre_x = (0.25 + 0.5 * uniform[:, 1]) * (width - 1)
    radius = max_radius_px * (0.25 + 0.75 * uniform[:, 2])
    rows = torch.arange(height, device=device, dtype=torch.float32)[None, :, None]
    cols = torch.arange(width, device=device, dtype=torch.float32)[None, None, :]
    distance2 = (rows - centre_y[:, None, None]) ** 2 + (cols - centre_x[:, None, None]) ** 2
    return distance2, radius, uniform[:, 3:]


def random_discs(
    count: int, height: int, width: int, max_radius_px: float, device: torch.device | str
) -> torch.Tensor:
    """(count, 1, height, width) bool masks, one filled disc each (`random_disc_distances`)."""
    distance2, radius, _ = random_disc_distances(count, height, width, max_radius_px, device)
    return (distance2 <= radius[:, None, None] ** 2)[:, None]


def random_soft_voids(
    count: int, height: int, width: int, max_radius_px: float, device: torch.device | str
) -> torch.Tensor:
    """(count, 1, height, width) float32 signal fraction in [0, 1]: 1 outside one disc per
    image, 0 in its core, a smoothstep between them.

    Discs are drawn as in `random_discs`; the core radius is a uniform fraction in [1/3, 2/3]
    of the disc's. Uses the global torch generator."""
    distance2, radius, extra = random_disc_distances(
        count, height, width, max_radius_px, device, extra_draws=1
    )
    core = radius * (1.0 + extra[:, 0]) / 3.0
    ramp = (distance2.sqrt() - core[:, None, None]) / (radius - core)[:, None, None]
    ramp = ramp.clamp(0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp))[:, None]


def fade_channel(images: torch.Tensor, channel: int, signal: torch.Tensor) -> torch.Tensor:
    """A copy of (N, C, H, W) `images` in [-1, 1] whose `channel` keeps the fraction `signal`
    ((N, 1, H, W) in [0, 1]) of its signal above NO_SIGNAL, the rest replaced by a Rayleigh
    noise floor of scale FLOOR_STD: x' = -1 + s (x + 1) + (1 - s) |n|, n complex Gaussian.
    The other channels are unchanged. Uses the global torch generator."""
    target = images[:, channel : channel + 1].float()
    noise = torch.randn(*target.shape, 2, device=target.device) * FLOOR_STD
    floor = noise.pow(2).sum(-1).sqrt()
    faded = NO_SIGNAL + signal * (target - NO_SIGNAL) + (1.0 - signal) * floor
    out = images.clone()
    out[:, channel : channel + 1] = faded.clamp(-1.0, 1.0).to(images.dtype)
    return out


def random_voids(
    images: torch.Tensor, channel: int, max_radius_px: float, shape: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(voided, mask) for (N, C, H, W) `images`: `channel` given one random void of `shape`
    ("disc" or "soft", VOID_SHAPES) per image; mask (N, 1, H, W) bool is where the signal was
    changed, the pixels the void term scores."""
    n, _, height, width = images.shape
    if shape == "disc":
        masks = random_discs(n, height, width, max_radius_px, images.device)
        return blank_channel(images, channel, masks), masks
    if shape == "soft":
        signal = random_soft_voids(n, height, width, max_radius_px, images.device)
        return fade_channel(images, channel, signal), signal < 1.0
    raise ValueError(f"void shape must be one of {VOID_SHAPES}, got {shape!r}")


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
