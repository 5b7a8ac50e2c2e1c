"""Metal segmentation from a CT alone: the implant's voxels, without the rim it blooms into.

A metal implant reconstructs far above any tissue (titanium alloy about 6,000-8,000 HU, CoCrMo
higher on an extended-HU scanner; cortical bone stays below 2,000 HU). A fixed threshold
(`METAL_HU`, 2,500 HU) finds it, but also takes the bright rim around it: the blur of the
reconstruction spreads the implant's edge over a pixel or two, and the streaks start there. On
the synthetic test subjects that rim is about a fifth of the thresholded voxels, and classical
MAR pastes those voxels back as metal, so the rim survives the correction.

`segment_metal` takes the edge of each implant where its blurred profile crosses half its own
height above soft tissue (0 HU): the half-maximum rule for the edge of a blurred step. Per
slice, each connected region above the threshold keeps its voxels above

    max(threshold_hu, edge_fraction * median HU of the region).

A scanner that clips at 3,071 HU (the standard 12-bit scale) saturates the implant: more than
half of its region sits at the region's maximum. The half height is then unknown (the true
values are above the scale), but the saturated voxels are the implant's core and the blurred
rim falls below the clip, so a saturated region keeps only its voxels at the maximum.
`edge_fraction` 0 is the plain threshold everywhere. Measured on the benchmark's 9 implanted
test subjects (docs/model.md, "Metal without a mask"): Dice against the true metal 0.97 (0.89
for the plain threshold), and NMAR with it 148 HU RMSE within 30 mm of the metal (true mask
134 HU, plain threshold 233 HU). With the CTs clipped at 3071 HU: Dice 0.93 (plain threshold
0.89), NMAR 199 HU (plain threshold 233 HU).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from madn_core.band import METAL_HU

EDGE_FRACTION = 0.5  # the half-maximum edge of a blurred step


def segment_metal(
    ct_hu: np.ndarray, threshold_hu: float = METAL_HU, edge_fraction: float = EDGE_FRACTION
) -> np.ndarray:
    """Metal voxels of `ct_hu`, a slice (H, W) or volume (Z, H, W) in HU: a bool array of the
    same shape (module doc). Regions are 8-connected within a slice, never across slices."""
    volume = np.asarray(ct_hu, dtype=np.float32)
    if volume.ndim not in (2, 3):
        raise ValueError(f"CT must be a slice (H, W) or volume (Z, H, W), got shape {volume.shape}")
    candidates = volume > threshold_hu
    if edge_fraction <= 0 or not candidates.any():
        return candidates
    in_plane = np.zeros((3,) * volume.ndim, bool)
    in_plane[(1,) * (volume.ndim - 2)] = True  # 8-connected in (H, W), never along Z
    regions, count = ndimage.label(candidates, structure=in_plane)
    index = np.arange(1, count + 1)
    medians = np.asarray(ndimage.median(volume, regions, index), dtype=np.float32)
    maxima = np.asarray(ndimage.maximum(volume, regions, index), dtype=np.float32)
    edges = np.maximum(np.float32(threshold_hu), np.float32(edge_fraction) * medians)
    saturated = medians >= maxima  # a clipped scale: keep the voxels at the maximum
    below_maximum = np.nextafter(maxima, np.float32(-np.inf))
    edges = np.where(saturated, np.maximum(edges, below_maximum), edges)
    level = np.concatenate([[np.inf], edges])[regions]
    return candidates & (volume > level)
