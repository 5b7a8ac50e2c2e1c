"""Small generated 2D CT/MRI-like image pairs with streak and signal-void artefacts.

A smoke-test data source for the training loop (unit tests, `madn demo` until the physics-based
synthesis and shard cache exist). It is not a model of real anatomy or artefact physics: clean
images are smooth random blobs in both channels (MRI a nonlinear function of CT plus its own
texture), and corrupted images add bright/dark streaks radiating from a point "implant" to the CT
channel and a dark void around it to the MRI channel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _smooth_field(
    count: int, size: int, generator: torch.Generator, scale: int = 8
) -> torch.Tensor:
    coarse = torch.rand(count, 1, scale, scale, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def clean_pairs(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 2, size, size) clean images in [-1, 1]: channel 0 CT-like, channel 1 MRI-like."""
    ct = _smooth_field(count, size, generator) * 2.0 - 1.0
    texture = _smooth_field(count, size, generator, scale=16) * 0.3
    mri = torch.tanh(2.0 * (0.4 - ct.square())) * 0.8 + texture - 0.15
    return torch.cat([ct, mri], dim=1).clamp(-1.0, 1.0)


def add_artefacts(
    clean: torch.Tensor, generator: torch.Generator, streaks: int = 12
) -> torch.Tensor:
    """Corrupt (N, 2, H, W) clean pairs: CT streaks from a random point, MRI void around it."""
    n, _, h, w = clean.shape
    ys = torch.linspace(-1.0, 1.0, h).view(1, h, 1)
    xs = torch.linspace(-1.0, 1.0, w).view(1, 1, w)
    centre = torch.rand(n, 2, generator=generator) * 0.8 - 0.4
    dy, dx = ys - centre[:, 0].view(n, 1, 1), xs - centre[:, 1].view(n, 1, 1)
    radius = torch.sqrt(dy.square() + dx.square())
    angle = torch.atan2(dy, dx)
    phase = torch.rand(n, 1, 1, generator=generator) * 2 * math.pi
    streak = torch.cos(streaks * angle + phase) * torch.exp(-radius * 1.5)
    corrupted = clean.clone()
    corrupted[:, 0] = (clean[:, 0] + 0.6 * streak).clamp(-1.0, 1.0)
    void = torch.sigmoid((0.25 - radius) * 30.0)
    corrupted[:, 1] = clean[:, 1] * (1 - void) - void
    return corrupted


def streak_batches(
    count: int, size: int, batch_size: int, seed: int, channels: tuple[int, ...] = (0, 1)
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`count` unpaired (corrupted, clean) examples in batches: list of ((B,C,H,W), (B,C,H,W)).

    The corrupted images come from other clean draws than the clean batch (unpaired, as MADN
    trains). channels selects (0,) CT, (1,) MRI or (0, 1) both.
    """
    generator = torch.Generator().manual_seed(seed)
    corrupted = add_artefacts(clean_pairs(count, size, generator), generator)[:, list(channels)]
    clean = clean_pairs(count, size, generator)[:, list(channels)]
    return [
        (corrupted[i : i + batch_size], clean[i : i + batch_size])
        for i in range(0, count, batch_size)
    ]
