"""Differentiable multimodal similarity measures and the MADN similarity loss.

Every measure takes two batches of single-channel images, (N, H, W) or (N, 1, H, W), and returns
a per-sample similarity S of shape (N,) that is symmetric in its arguments, has |S| in [0, 1],
S(x, x) = 1, and is invariant to an affine intensity change a*x + b (a != 0). The loss is
L_sim = 1 - mean |S| (paper eq. 6). Everything is computed in float32, also under autocast, and
constant images give finite values (S = 0) and finite gradients.

- `lncc`: locally normalised cross correlation with a Gaussian window of std `sigma` pixels,
  truncated at `truncate` sigma, computed by separable normalised convolution (the window is
  renormalised by the part inside the image, as NiftyReg does, so borders are not biased).
  S = mean over pixels of |r| (NiftyReg's convention), since CT and T1 contrasts are locally
  positively or negatively correlated depending on the tissue.
- `cc`: global Pearson correlation, signed; the limit of LNCC for an unbounded window.
- `nmi`: normalised mutual information from Parzen-window histograms; see `nmi`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

SimilarityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Variance floor of the global standardisation, in squared input units: a constant image
# standardises to exactly zero instead of amplified rounding noise.
_GLOBAL_VAR_EPS = 1e-10
# Floor of the local variances of standardised images (unit global variance).
_LOCAL_VAR_EPS = 1e-5


def _as_float_images(x: torch.Tensor, name: str) -> torch.Tensor:
    """(N, H, W) or (N, 1, H, W) -> (N, 1, H, W) float32."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
    return x.float()


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _as_float_images(a, "a"), _as_float_images(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return a, b


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-sample zero mean, unit variance over (C, H, W); constant samples become zeros."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    centred = x - mean
    var = centred.square().mean(dim=(1, 2, 3), keepdim=True)
    return centred / torch.sqrt(var + _GLOBAL_VAR_EPS)


def gaussian_kernel1d(sigma: float, radius: int, device: torch.device) -> torch.Tensor:
    """Unnormalised Gaussian taps exp(-t^2 / 2 sigma^2) for t in [-radius, radius], float32."""
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return torch.exp(-0.5 * (t / sigma) ** 2)


def gaussian_filter(
    x: torch.Tensor, sigma: float, truncate: float = 3.0, separable: bool = True
) -> torch.Tensor:
    """Normalised Gaussian smoothing of every channel of (N, C, H, W): the weighted mean of the
    window's part inside the image (zero padding divided by the filtered all-ones image).

    The window has std `sigma` pixels and radius ceil(truncate * sigma), capped per axis at
    the image size (farther taps never touch the image). `separable=False` runs the same filter
    as one direct 2D convolution; it exists to check and benchmark the separable path.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    _, c, h, w = x.shape
    radius = math.ceil(truncate * sigma)
    rh, rw = min(radius, h - 1), min(radius, w - 1)
    kh = gaussian_kernel1d(sigma, rh, x.device)
    kw = gaussian_kernel1d(sigma, rw, x.device)
    ones_h = torch.ones(1, 1, h, device=x.device)
    ones_w = torch.ones(1, 1, w, device=x.device)
    norm_h = F.conv1d(ones_h, kh.view(1, 1, -1), padding=rh).view(h, 1)
    norm_w = F.conv1d(ones_w, kw.view(1, 1, -1), padding=rw).view(1, w)
    norm = norm_h * norm_w
    if separable:
        out = F.conv2d(x, kw.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, rw), groups=c)
        out = F.conv2d(out, kh.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(rh, 0), groups=c)
    else:
        kernel = (kh.view(-1, 1) * kw.view(1, -1)).expand(c, 1, -1, -1)
        out = F.conv2d(x, kernel, padding=(rh, rw), groups=c)
    return out / norm


def lncc_map(
    a: torch.Tensor,
    b: torch.Tensor,
    sigma: float = 5.0,
    truncate: float = 3.0,
    separable: bool = True,
) -> torch.Tensor:
    """Per-pixel local correlation r in [-1, 1] of two image batches: (N, 1, H, W).

    Local means, variances and covariance come from one grouped Gaussian filtering of the
    stacked maps [a, b, a^2, b^2, ab] after per-sample standardisation; variances are clamped
    at zero and floored by a small epsilon before the division, so flat regions give r ~ 0.
    """
    a, b = _check_pair(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        a, b = _standardise(a), _standardise(b)
        stats = gaussian_filter(
            torch.cat([a, b, a * a, b * b, a * b], dim=1), sigma, truncate, separable
        )
        mean_a, mean_b, mean_aa, mean_bb, mean_ab = stats.unbind(dim=1)
        var_a = (mean_aa - mean_a.square()).clamp_min(0.0)
        var_b = (mean_bb - mean_b.square()).clamp_min(0.0)
        cov = mean_ab - mean_a * mean_b
        r = cov / torch.sqrt((var_a + _LOCAL_VAR_EPS) * (var_b + _LOCAL_VAR_EPS))
        return r.clamp(-1.0, 1.0).unsqueeze(1)


def lncc(
    a: torch.Tensor, b: torch.Tensor, sigma: float = 5.0, truncate: float = 3.0
) -> torch.Tensor:
    """Mean over pixels of |local correlation|, per sample: (N,) in [0, 1]."""
    return lncc_map(a, b, sigma, truncate).abs().mean(dim=(1, 2, 3))


def cc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Global Pearson correlation per sample: (N,) in [-1, 1]."""
    a, b = _check_pair(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        a, b = _standardise(a), _standardise(b)
        cov = (a * b).mean(dim=(1, 2, 3))
        var_a = a.square().mean(dim=(1, 2, 3))
        var_b = b.square().mean(dim=(1, 2, 3))
        r = cov / torch.sqrt((var_a + _LOCAL_VAR_EPS) * (var_b + _LOCAL_VAR_EPS))
        return r.clamp(-1.0, 1.0)


def _parzen_weights(x: torch.Tensor, bins: int, sigma_ratio: float) -> torch.Tensor:
    """(N, 1, H, W) -> soft bin memberships (N, H*W, bins), each row summing to 1.

    Each sample is min-max scaled to [0, 1] first, so the weights are invariant to a*x + b
    (a < 0 mirrors the bins, which leaves mutual information unchanged).
    """
    flat = x.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    high = flat.max(dim=1, keepdim=True).values
    unit = (flat - low) / (high - low + 1e-8)
    centres = torch.linspace(0.0, 1.0, bins, device=x.device)
    width = sigma_ratio / (bins - 1)
    logits = -0.5 * ((unit.unsqueeze(-1) - centres) / width) ** 2
    return torch.softmax(logits, dim=-1)


def _mutual_information(wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """MI (nats) of the Parzen joint histogram of two weight sets (N, P, bins): (N,)."""
    eps = 1e-10
    joint = torch.bmm(wa.transpose(1, 2), wb) / wa.shape[1]
    pa = wa.mean(dim=1).unsqueeze(2)
    pb = wb.mean(dim=1).unsqueeze(1)
    return (joint * (torch.log(joint + eps) - torch.log(pa * pb + eps))).sum(dim=(1, 2))


def nmi(a: torch.Tensor, b: torch.Tensor, bins: int = 32, sigma_ratio: float = 0.5) -> torch.Tensor:
    """Normalised mutual information per sample: (N,) in [0, 1].

    S = 2 MI(a, b) / (MI(a, a) + MI(b, b)), all three from the same Parzen-window estimator
    (Gaussian kernel of std sigma_ratio x bin spacing, `bins` centres evenly in [0, 1]). Without
    smoothing MI(a, a) = H(a) and this is the usual 2 MI / (H(a) + H(b)); using the smoothed
    self-information keeps S(x, x) = 1 exactly, where the smoothed entropies would cap it near
    0.66 at 23 bins.
    """
    a, b = _check_pair(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        wa = _parzen_weights(a, bins, sigma_ratio)
        wb = _parzen_weights(b, bins, sigma_ratio)
        mi_ab = _mutual_information(wa, wb)
        mi_aa = _mutual_information(wa, wa)
        mi_bb = _mutual_information(wb, wb)
        return (2.0 * mi_ab / (mi_aa + mi_bb + 1e-8)).clamp(0.0, 1.0)


SIMILARITIES: dict[str, Callable[..., torch.Tensor]] = {"lncc": lncc, "cc": cc, "nmi": nmi}


def get_similarity(name: str, sigma: float = 5.0, nmi_bins: int = 32) -> SimilarityFn:
    """The similarity `name` ("lncc", "cc" or "nmi") bound to its parameters: f(a, b) -> (N,)."""
    if name == "lncc":
        return partial(lncc, sigma=sigma)
    if name == "cc":
        return cc
    if name == "nmi":
        return partial(nmi, bins=nmi_bins)
    raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {name!r}")


def similarity_loss(a: torch.Tensor, b: torch.Tensor, similarity: SimilarityFn) -> torch.Tensor:
    """L_sim = 1 - mean |S(a, b)| over the batch: a scalar in [0, 1]."""
    return 1.0 - similarity(a, b).abs().mean()
