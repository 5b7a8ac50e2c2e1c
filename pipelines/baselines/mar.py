"""Classical metal artefact reduction baselines: LI-MAR and NMAR, in the image domain.

Both take a reconstructed CT in HU (a slice ``(H, W)`` or a volume ``(Z, H, W)``) and its metal
mask (or segment the metal with `metal.segment_metal`), reproject the image with the simulator's
parallel-beam geometry (`pipelines.synth.geometry.ParallelBeamCT`), repair the metal trace in
the sinogram,
reconstruct with filtered back-projection and paste the metal back:

- LI-MAR (Kalender et al., Radiology 1987): projection values inside the metal trace are replaced,
  view by view, by linear interpolation along the detector between the trace's edges.
- NMAR (Meyer et al., Med. Phys. 2010): a prior image is obtained by classifying the LI image
  into air / soft tissue / bone and flattening air and soft tissue; the sinogram is divided by
  the prior's projection, interpolated inside the trace, multiplied back, then reconstructed.

Rectangular slices are zero-padded (with air) to a square before projection. HU is converted to
attenuation relative to water, mu / mu_water = 1 + HU / 1000 (so projections are in water-
equivalent path lengths, cm). Both methods are linear in that scale (interpolation, the prior's
ratio and its floor all scale with mu_water), so the result in HU does not depend on the energy
the water value would be taken at, and no attenuation database is needed to run them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from pipelines.baselines.metal import EDGE_FRACTION, segment_metal
from pipelines.synth.geometry import ParallelBeamCT

AIR_HU = -1000.0


@dataclass(frozen=True)
class MARSettings:
    """metal_threshold_hu / metal_edge_fraction: the metal segmentation when no mask is given
    (`metal.segment_metal`: each region above the threshold down to its half-maximum edge;
    edge fraction 0: the plain threshold).
    air_threshold_hu / bone_threshold_hu: NMAR prior classes (air below, bone above; soft tissue
    between is set to 0 HU). prior_smoothing_px: Gaussian std applied to the LI image before
    classification. mask_dilation_px: metal mask dilation before forward projection, so that the
    partial-volume rim of the implant is inside the trace."""

    metal_threshold_hu: float = 2500.0
    metal_edge_fraction: float = EDGE_FRACTION
    air_threshold_hu: float = -500.0
    bone_threshold_hu: float = 350.0
    prior_smoothing_px: float = 1.0
    mask_dilation_px: int = 1


def _interpolate_trace(sinogram: torch.Tensor, trace: torch.Tensor) -> torch.Tensor:
    """Linear interpolation along the detector inside `trace`.

    sinogram: (B, views, bins) float; trace: same shape, bool (True = replace).
    Bins with an unmasked neighbour on one side only take that neighbour's value."""
    bins = sinogram.shape[-1]
    position = torch.arange(bins, device=sinogram.device).expand_as(sinogram)
    keep = ~trace
    previous = torch.where(keep, position, torch.full_like(position, -1)).cummax(dim=-1).values
    following = torch.where(keep, position, torch.full_like(position, bins)).flip(-1)
    following = following.cummin(dim=-1).values.flip(-1)
    has_prev, has_next = previous >= 0, following < bins
    left = sinogram.gather(-1, previous.clamp(0, bins - 1))
    right = sinogram.gather(-1, following.clamp(0, bins - 1))
    span = (following - previous).clamp_min(1).float()
    weight = (position - previous).float() / span
    both = (1 - weight) * left + weight * right
    filled = torch.where(has_prev & has_next, both, torch.where(has_prev, left, right))
    filled = torch.where(has_prev | has_next, filled, torch.zeros_like(filled))
    return torch.where(trace, filled, sinogram)


class _Problem:
    """A batch of slices prepared for projection: square, in mu (1/cm), with the metal trace."""

    def __init__(
        self,
        ct_hu: np.ndarray,
        metal_mask: np.ndarray | None,
        pixel_mm: float,
        settings: MARSettings,
        device: str | torch.device,
    ) -> None:
        array = np.asarray(ct_hu, dtype=np.float32)
        if array.ndim not in (2, 3):
            raise ValueError(
                f"CT must be a slice (H, W) or volume (Z, H, W), got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError("CT contains non-finite values")
        if pixel_mm <= 0:
            raise ValueError(f"pixel_mm must be > 0, got {pixel_mm}")
        self.single = array.ndim == 2
        volume = array[None] if self.single else array
        if metal_mask is None:
            mask = segment_metal(volume, settings.metal_threshold_hu, settings.metal_edge_fraction)
        else:
            mask = np.asarray(metal_mask).astype(bool)
            mask = mask[None] if self.single else mask
            if mask.shape != volume.shape:
                raise ValueError(
                    f"metal mask shape {mask.shape} does not match the CT shape {volume.shape}"
                )
        self.height, self.width = volume.shape[1:]
        size = max(self.height, self.width)
        self.top, self.left = (size - self.height) // 2, (size - self.width) // 2
        square = np.full((volume.shape[0], size, size), AIR_HU, dtype=np.float32)
        square[:, self.top : self.top + self.height, self.left : self.left + self.width] = volume
        square_mask = np.zeros(square.shape, dtype=bool)
        square_mask[:, self.top : self.top + self.height, self.left : self.left + self.width] = mask
        self.hu = square
        self.mask = square_mask
        self.settings = settings
        self.device = torch.device(device)
        self.geometry = ParallelBeamCT(size, pixel_mm / 10.0, device=self.device)
        self.metal_slices = self.mask.reshape(len(self.mask), -1).any(axis=1)

    def to_mu(self, hu: np.ndarray) -> torch.Tensor:
        mu = 1.0 + torch.from_numpy(hu).to(self.device) / 1000.0  # mu / mu_water
        return mu.clamp_min(0.0)

    def to_hu(self, mu: torch.Tensor) -> np.ndarray:
        return (1000.0 * (mu - 1.0)).cpu().numpy()

    def trace(self, mask: np.ndarray) -> torch.Tensor:
        dilated = np.stack(
            [
                ndimage.binary_dilation(m, iterations=self.settings.mask_dilation_px)
                if self.settings.mask_dilation_px > 0
                else m
                for m in mask
            ]
        )
        projected = self.geometry.project(
            torch.from_numpy(dilated.astype(np.float32)).to(self.device)
        )
        return projected > 1e-6

    def finish(self, corrected_hu: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Paste metal back, put corrected slices into the input, crop to the input shape."""
        out = self.hu.copy()
        repaired = np.where(self.mask[index], self.hu[index], corrected_hu)
        out[index] = repaired
        out = out[:, self.top : self.top + self.height, self.left : self.left + self.width]
        return out[0] if self.single else out


def li_mar(
    ct_hu: np.ndarray,
    metal_mask: np.ndarray | None = None,
    pixel_mm: float = 1.0,
    settings: MARSettings | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Linear-interpolation MAR. ct_hu: (H, W) or (Z, H, W) in HU; metal_mask: same shape (bool)
    or None to segment it (`metal.segment_metal` with `settings`' threshold and edge fraction);
    pixel_mm: in-plane spacing (mm). Returns float32 HU of the input's shape; slices without
    metal are returned unchanged."""
    problem = _Problem(ct_hu, metal_mask, pixel_mm, settings or MARSettings(), device)
    index = np.flatnonzero(problem.metal_slices)
    if len(index) == 0:
        return problem.finish(problem.hu[index], index)
    corrected, _, _ = _li_mu(problem, index)
    return problem.finish(problem.to_hu(corrected), index)


def _li_mu(problem: _Problem, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LI on the slices `index`: (image in mu, the reprojected sinogram, the metal trace)."""
    geometry = problem.geometry
    sinogram = geometry.project(problem.to_mu(problem.hu[index]))
    trace = problem.trace(problem.mask[index])
    return geometry.fbp(_interpolate_trace(sinogram, trace)), sinogram, trace


def nmar(
    ct_hu: np.ndarray,
    metal_mask: np.ndarray | None = None,
    pixel_mm: float = 1.0,
    settings: MARSettings | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Normalised MAR with a tissue-classified prior. Arguments and result as `li_mar`."""
    settings = settings or MARSettings()
    problem = _Problem(ct_hu, metal_mask, pixel_mm, settings, device)
    index = np.flatnonzero(problem.metal_slices)
    if len(index) == 0:
        return problem.finish(problem.hu[index], index)
    geometry = problem.geometry
    li_mu, sinogram, trace = _li_mu(problem, index)
    li_hu = problem.to_hu(li_mu)
    smoothed = np.stack(
        [ndimage.gaussian_filter(s, settings.prior_smoothing_px) for s in li_hu]
    ).astype(np.float32)
    prior_hu = np.where(
        smoothed < settings.air_threshold_hu,
        AIR_HU,
        np.where(smoothed > settings.bone_threshold_hu, smoothed, 0.0),
    ).astype(np.float32)
    prior_hu[problem.mask[index]] = 0.0  # metal region: soft-tissue-like in the prior
    prior = geometry.project(problem.to_mu(prior_hu))
    # normalise where the prior ray crosses matter; rays through air only keep their raw value
    floor = 0.05 * geometry.pixel_cm  # 5 % of a pixel of water
    valid = prior > floor
    normalised = torch.where(valid, sinogram / prior.clamp_min(floor), sinogram)
    repaired = _interpolate_trace(normalised, trace)
    restored = torch.where(valid, repaired * prior, _interpolate_trace(sinogram, trace))
    return problem.finish(problem.to_hu(geometry.fbp(restored)), index)


CT_PRIOR_METHODS = {"li": li_mar, "nmar": nmar}


def apply_ct_prior(
    prior: str, ct_hu: np.ndarray, metal_mask: np.ndarray | None, pixel_mm: float
) -> np.ndarray:
    """The CT a model with `DataConfig.ct_prior` == `prior` sees: "none" returns `ct_hu` as it
    is, "li" / "nmar" its `li_mar` / `nmar` (arguments as `li_mar`: (H, W) or (Z, H, W) HU, a
    bool metal mask of the same shape or None, in-plane spacing in mm). float32 HU out."""
    if prior == "none":
        return np.asarray(ct_hu, dtype=np.float32)
    if prior not in CT_PRIOR_METHODS:
        raise ValueError(f"CT prior {prior!r}: expected none, {', '.join(CT_PRIOR_METHODS)}")
    return CT_PRIOR_METHODS[prior](ct_hu, metal_mask, pixel_mm=pixel_mm)
