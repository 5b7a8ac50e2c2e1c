"""Image-quality and segmentation metrics (torch, per sample, data-range aware).

All functions take batches (N, C, H, W) or (N, H, W) and return one value per sample, (N,),
unless stated otherwise. Masks are boolean (or 0/1) tensors broadcastable to the images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from madn_core.similarity import gaussian_kernel1d


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def psnr(
    pred: torch.Tensor, target: torch.Tensor, data_range: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE), optionally inside `mask`.

    data_range: the span of valid intensities (2.0 for images in [-1, 1], 3000 for CT clipped to
    [-1000, 2000] HU). Identical images give +inf; an empty mask gives NaN.
    """
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    err = _per_sample((pred.float() - target.float()).square())
    if mask is None:
        mse = err.mean(dim=1)
    else:
        weights = _per_sample(mask.expand_as(pred).float())
        mse = (err * weights).sum(dim=1) / weights.sum(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float,
    mask: torch.Tensor | None = None,
    sigma: float = 1.5,
    radius: int = 5,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window, std 1.5 px, K1 .01, K2 .03.

    Computed per channel over the "valid" part of the image (no padding); with a `mask`, the SSIM
    map is averaged over the valid pixels inside the mask.
    """
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    if pred.dim() == 3:
        pred, target = pred.unsqueeze(1), target.unsqueeze(1)
        mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
    x, y = pred.float(), target.float()
    mu_x, mu_y, xx, yy, xy = _gaussian_moments(x, y, sigma, radius)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    var_x = xx - mu_x.square()
    var_y = yy - mu_y.square()
    cov = xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    )
    if mask is None:
        return _per_sample(ssim_map).mean(dim=1)
    inner = mask.expand_as(pred).float()[..., radius:-radius, radius:-radius]
    weights = _per_sample(inner)
    return (_per_sample(ssim_map) * weights).sum(dim=1) / weights.sum(dim=1)


def _gaussian_moments(
    x: torch.Tensor, y: torch.Tensor, sigma: float, radius: int
) -> tuple[torch.Tensor, ...]:
    """Local Gaussian means of x, y, x^2, y^2 and xy over the "valid" part of (N, C, H, W)
    images: each (N, C, H - 2 radius, W - 2 radius). The window is separable, so one row pass
    and one column pass over the five stacked moments replace five 2D convolutions."""
    channels = x.shape[1]
    k = gaussian_kernel1d(sigma, radius, x.device)
    k = (k / k.sum()).to(x.dtype)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 5C, H, W)
    groups = stacked.shape[1]
    rows = F.conv2d(stacked, k.view(1, 1, 1, -1).expand(groups, 1, 1, -1), groups=groups)
    blurred = F.conv2d(rows, k.view(1, 1, -1, 1).expand(groups, 1, -1, 1), groups=groups)
    return tuple(blurred.split(channels, dim=1))


def masked_std(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Standard deviation (population, ddof 0) of `values` inside `mask`, per sample; NaN if empty.

    The paper's sigma_CT: pass CT in HU and a muscle mask to get HU.
    """
    v = _per_sample(values.float())
    w = _per_sample(mask.expand_as(values).float())
    count = w.sum(dim=1)
    mean = (v * w).sum(dim=1) / count
    var = ((v - mean.unsqueeze(1)).square() * w).sum(dim=1) / count
    return var.sqrt()


def dice(pred_labels: torch.Tensor, true_labels: torch.Tensor, label: int) -> torch.Tensor:
    """Dice overlap 2|P ∩ T| / (|P| + |T|) of one label value, per sample; NaN if both are empty."""
    p = _per_sample(pred_labels == label).float()
    t = _per_sample(true_labels == label).float()
    overlap = (p * t).sum(dim=1)
    return 2.0 * overlap / (p.sum(dim=1) + t.sum(dim=1))
