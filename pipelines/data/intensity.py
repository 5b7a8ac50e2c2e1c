"""Intensity mapping between scanner units and the networks' [-1, 1] range (docs/data.md).

CT: HU clipped to [ct_min, ct_max] (default [-1000, 2000]) and scaled linearly to [-1, 1].
MRI: scaled per volume so that its robust percentiles (default 0.5th and 99.5th) map to -1 and
+1, then clipped. The parameters travel with every slice, so that outputs map back to HU and to
the MRI's original range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntensityConfig:
    """ct_min/ct_max: HU window mapped to [-1, 1]; mri_percentiles: (low, high) in percent."""

    ct_min: float = -1000.0
    ct_max: float = 2000.0
    mri_percentiles: tuple[float, float] = (0.5, 99.5)

    def __post_init__(self) -> None:
        if not self.ct_max > self.ct_min:
            raise ValueError(f"ct_max ({self.ct_max}) must be above ct_min ({self.ct_min})")
        low, high = self.mri_percentiles
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(
                f"mri_percentiles must satisfy 0 <= low < high <= 100, got {low, high}"
            )


def to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """[low, high] -> [-1, 1] (float32), values outside clipped."""
    scaled = 2.0 * (np.asarray(values, dtype=np.float32) - low) / (high - low) - 1.0
    return np.clip(scaled, -1.0, 1.0).astype(np.float32, copy=False)


def from_unit(unit: np.ndarray, low: float, high: float) -> np.ndarray:
    """[-1, 1] -> [low, high] (float32); the inverse of `to_unit` inside the range."""
    return ((np.asarray(unit, dtype=np.float32) + 1.0) * 0.5 * (high - low) + low).astype(
        np.float32, copy=False
    )


def hu_to_unit(hu: np.ndarray, ct_min: float, ct_max: float) -> np.ndarray:
    """HU -> [-1, 1] (float32), values outside [ct_min, ct_max] clipped."""
    return to_unit(hu, ct_min, ct_max)


def unit_to_hu(unit: np.ndarray, ct_min: float, ct_max: float) -> np.ndarray:
    """[-1, 1] -> HU (float32)."""
    return from_unit(unit, ct_min, ct_max)


def mri_range(volume: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float]:
    """Robust (low, high) of an MRI volume; high > low even for a constant volume."""
    low, high = np.percentile(np.asarray(volume, dtype=np.float32), percentiles)
    if not high > low:
        high = low + 1.0
    return float(low), float(high)


def mri_to_unit(volume: np.ndarray, low: float, high: float) -> np.ndarray:
    """MRI intensities -> [-1, 1] (float32) given the volume's robust range, clipped."""
    return to_unit(volume, low, high)


def unit_to_mri(unit: np.ndarray, low: float, high: float) -> np.ndarray:
    """[-1, 1] -> the MRI's original intensity range (float32)."""
    return from_unit(unit, low, high)
