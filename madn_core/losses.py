"""Adversarial objectives and L1 helpers of the MADN loss (paper eqs. 2-8)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_generator_loss(fake_logits: torch.Tensor, mode: str) -> torch.Tensor:
    """Generator side of the GAN objective: push D(fake) towards "real".

    fake_logits: discriminator output on generated images, (N, 1, h, w) patch logits.
    mode "lsgan": mean (D - 1)^2; "vanilla": BCE-with-logits against 1.
    """
    if mode == "lsgan":
        return (fake_logits.float() - 1.0).square().mean()
    if mode == "vanilla":
        logits = fake_logits.float()
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    raise ValueError(f"gan mode must be lsgan or vanilla, got {mode!r}")


def gan_discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str
) -> torch.Tensor:
    """Discriminator objective 0.5 * (loss(real, 1) + loss(fake, 0)); scalar."""
    real, fake = real_logits.float(), fake_logits.float()
    if mode == "lsgan":
        return 0.5 * ((real - 1.0).square().mean() + fake.square().mean())
    if mode == "vanilla":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        )
    raise ValueError(f"gan mode must be lsgan or vanilla, got {mode!r}")


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference in float32 (images in [-1, 1] units); scalar."""
    return (a.float() - b.float()).abs().mean()
