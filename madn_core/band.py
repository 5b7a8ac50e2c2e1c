"""The implant band: where a model's correction is applied (`network.correction_band_mm`).

Metal artefacts are strongest near the implant; far from it, a network trained for a few
thousand steps mostly blurs anatomy it should leave alone. With a band of r mm the corrected
image is

    out = w * G_I(x) + (1 - w) * x,    w = clip((2 r - d) / r, 0, 1),

where d is the in-plane distance (mm) of each pixel to the nearest metal pixel: the network's
output within r mm of the metal, the input beyond 2 r mm, and a linear blend between. This is
the image-domain analogue of LI and NMAR replacing only the metal trace of the sinogram. A slice
without metal is returned unchanged. r = 0 turns the band off (ADN: the whole image). The blend
itself, one weight per channel from one distance map, is `madn_core.correction`'s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

METAL_HU = 2500.0  # CT voxels above this are metal (titanium and CoCr are far above, bone below)
_CHUNK = 16384  # pixels per distance block: bounds memory at CHUNK x edge pixels


def metal_from_ct(ct: torch.Tensor, window_hu: tuple[float, float]) -> torch.Tensor:
    """(N, 1, H, W) bool metal mask from CT in [-1, 1] mapped linearly from `window_hu` (HU);
    a window that ends below METAL_HU marks the saturated pixels (>= 0.999)."""
    low, high = window_hu
    threshold = 2.0 * (min(METAL_HU, high) - low) / (high - low) - 1.0
    return ct >= min(threshold, 0.999)


def distance_to_mask(mask: torch.Tensor, spacing_mm: float) -> torch.Tensor:
    """(H, W) distance in mm from each pixel to the nearest True pixel of the (H, W) bool
    `mask` (0 inside it, +inf everywhere when it is empty). Exact Euclidean distance to the
    mask's edge pixels, computed in blocks."""
    height, width = mask.shape
    if not bool(mask.any()):
        return torch.full((height, width), float("inf"), device=mask.device)
    inside = mask.float()[None, None]
    eroded = -F.max_pool2d(-inside, 3, stride=1, padding=1)
    edge = (mask & (eroded[0, 0] < 0.5)).nonzero().float()
    rows, cols = torch.meshgrid(
        torch.arange(height, device=mask.device),
        torch.arange(width, device=mask.device),
        indexing="ij",
    )
    grid = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()
    blocks = [grid[start : start + _CHUNK] for start in range(0, len(grid), _CHUNK)]
    nearest = torch.cat([torch.cdist(block, edge).min(dim=1).values for block in blocks])
    distance = nearest.view(height, width) * spacing_mm
    return distance.masked_fill(mask, 0.0)


def metal_distance(metal: torch.Tensor, spacing_mm: float) -> torch.Tensor:
    """(N, 1, H, W) distance in mm to the nearest metal pixel of (N, 1, H, W) bool `metal`;
    +inf on slices without metal."""
    distance = torch.full(metal.shape, float("inf"), device=metal.device)
    for i in range(metal.shape[0]):
        if bool(metal[i, 0].any()):
            distance[i, 0] = distance_to_mask(metal[i, 0], spacing_mm)
    return distance


def weight_at_distance(distance_mm: torch.Tensor, band_mm: float) -> torch.Tensor:
    """Blend weight in [0, 1] for a distance map in mm (any shape): 1 within `band_mm`, falling
    linearly to 0 at 2 * band_mm (module doc); 0 where the distance is +inf."""
    return ((2.0 * band_mm - distance_mm) / band_mm).clamp(0.0, 1.0)


def band_weight(metal: torch.Tensor, band_mm: float, spacing_mm: float) -> torch.Tensor:
    """(N, 1, H, W) blend weight in [0, 1] for (N, 1, H, W) bool `metal`: 1 within `band_mm` of
    metal, falling linearly to 0 at 2 * band_mm (see module doc); 0 on slices without metal."""
    return weight_at_distance(metal_distance(metal, spacing_mm), band_mm)
