"""Polychromatic CT simulation with metal: projection, Poisson noise, water BHC, FBP (torch).

Protocol (docs/synthesis.md): basis-material maps (partial densities of water, cortical bone,
titanium, CoCr) are forward projected along parallel rays (a documented simplification of the
fan beam); for every energy of a 120 kVp tungsten spectrum with 2.5 mm Al filtration the detected
intensity is I = sum_E S(E) exp(-sum_m (mu/rho)_m(E) L_m), photon counts are Poisson with
`photons` incident per ray and floored at one (photon starvation), the log projection gets the
usual water beam-hardening correction to 70 keV, and the slice is reconstructed by filtered
back-projection (Ram-Lak) and converted to HU. Beam hardening by metal and bone and photon
starvation behind metal then produce the dark and bright streaks. Everything runs on any torch
device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipelines.synth.tissues import TISSUES

# Mass attenuation coefficients mu/rho (cm^2/g), NIST XCOM (total with coherent), approximate.
TABLE_KEV = np.array([20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
MU_RHO = {
    "water": np.array([0.810, 0.376, 0.268, 0.227, 0.206, 0.184, 0.171, 0.151]),
    "bone": np.array([4.00, 1.331, 0.666, 0.424, 0.315, 0.223, 0.186, 0.149]),
    "titanium": np.array([15.85, 4.972, 2.214, 1.213, 0.766, 0.405, 0.273, 0.165]),
    "cocr": np.array([25.68, 8.176, 3.629, 1.958, 1.205, 0.595, 0.372, 0.196]),  # iron
    "aluminium": np.array([3.441, 1.128, 0.568, 0.368, 0.278, 0.202, 0.170, 0.138]),
}
MATERIALS = ("water", "bone", "titanium", "cocr")
REFERENCE_KEV = 70.0
ALUMINIUM_DENSITY = 2.699


def mass_attenuation(material: str, energies_kev: np.ndarray) -> np.ndarray:
    """mu/rho (cm^2/g) at the given energies, interpolated log-log in the NIST table."""
    return np.exp(np.interp(np.log(energies_kev), np.log(TABLE_KEV), np.log(MU_RHO[material])))


def tungsten_spectrum(
    kvp: float = 120.0, aluminium_mm: float = 2.5, step_kev: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(energies keV, normalised photon weights): Kramers' bremsstrahlung (kvp - E) / E, filtered
    by `aluminium_mm` of Al, sampled at `step_kev` from 20 keV to kvp."""
    energies = np.arange(20.0, kvp, step_kev)
    weights = (kvp - energies) / energies
    weights *= np.exp(
        -mass_attenuation("aluminium", energies) * ALUMINIUM_DENSITY * aluminium_mm / 10.0
    )
    return energies, weights / weights.sum()


@dataclass
class ScanProtocol:
    """kvp: tube voltage; aluminium_mm: filtration; photons: incident photons per ray;
    views: projections over 180 degrees (None: ceil(pi/2 * size))."""

    kvp: float = 120.0
    aluminium_mm: float = 2.5
    photons: float = 1e6
    views: int | None = None


class ParallelBeamCT:
    """Parallel-beam projector and FBP for square slices of `size` pixels of `pixel_cm`.

    Detector: `size * sqrt(2)` bins of one pixel, centred; rays sampled every pixel along their
    length with bilinear interpolation.
    """

    def __init__(
        self,
        size: int,
        pixel_cm: float,
        views: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.size = size
        self.pixel_cm = pixel_cm
        self.device = torch.device(device)
        self.views = views or math.ceil(math.pi / 2 * size)
        self.bins = math.ceil(size * math.sqrt(2)) // 2 * 2 + 1
        self.angles = (
            torch.arange(self.views, device=self.device, dtype=torch.float32) * math.pi / self.views
        )
        half = (self.bins - 1) / 2
        # detector and ray positions in units of the image half-width (grid_sample's [-1, 1])
        self.offsets = (
            (torch.arange(self.bins, device=self.device, dtype=torch.float32) - half) * 2.0 / size
        )
        self.ramp = self._ramp_filter()

    def _ramp_filter(self) -> torch.Tensor:
        """Ram-Lak filter (Kak & Slaney's spatial kernel, unit detector spacing) in rFFT space."""
        length = 1 << (2 * self.bins - 1).bit_length()
        n = torch.arange(length, device=self.device)
        n = torch.where(n > length // 2, n - length, n).float()
        kernel = torch.zeros(length, device=self.device)
        kernel[n == 0] = 0.25
        odd = (n.remainder(2) == 1) | (n.remainder(2) == -1)
        kernel[odd] = -1.0 / (math.pi * n[odd]) ** 2
        return torch.fft.rfft(kernel)

    def project(self, images: torch.Tensor, chunk: int = 32) -> torch.Tensor:
        """Line integrals: (B, S, S) maps (per cm) -> (B, views, bins) (unitless, x pixel_cm)."""
        batch = images.shape[0]
        out = torch.empty(batch, self.views, self.bins, device=images.device)
        source = images.unsqueeze(0)
        t = self.offsets.view(1, 1, -1)  # detector position
        r = self.offsets.view(1, -1, 1)  # position along the ray
        for start in range(0, self.views, chunk):
            theta = self.angles[start : start + chunk]
            cos, sin = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
            gx = t * cos - r * sin
            gy = t * sin + r * cos
            grid = torch.stack([gx.expand(-1, self.bins, -1), gy.expand(-1, self.bins, -1)], dim=-1)
            sampled = F.grid_sample(
                source.expand(len(theta), -1, -1, -1),
                grid,
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )
            out[:, start : start + len(theta)] = sampled.sum(dim=2).transpose(0, 1)
        return out * self.pixel_cm

    def fbp(self, sinogram: torch.Tensor, chunk: int = 32) -> torch.Tensor:
        """Filtered back-projection: (B, views, bins) line integrals -> (B, S, S) per cm."""
        batch = sinogram.shape[0]
        length = (self.ramp.shape[0] - 1) * 2
        filtered = torch.fft.irfft(torch.fft.rfft(sinogram, n=length) * self.ramp, n=length)[
            ..., : self.bins
        ]
        filtered = filtered / self.pixel_cm  # Ram-Lak scales as 1 / spacing^2, times spacing
        coords = (
            torch.arange(self.size, device=sinogram.device, dtype=torch.float32)
            + 0.5
            - self.size / 2
        )
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        image = torch.zeros(batch, self.size * self.size, device=sinogram.device)
        half = (self.bins - 1) / 2
        for start in range(0, self.views, chunk):
            theta = self.angles[start : start + chunk]
            u = (
                xx.reshape(1, -1) * theta.cos().view(-1, 1)
                + yy.reshape(1, -1) * theta.sin().view(-1, 1)
                + half
            )
            lower = u.floor().clamp(0, self.bins - 2)
            weight = (u - lower).clamp(0, 1)
            index = lower.long().unsqueeze(0).expand(batch, -1, -1)
            rows = filtered[:, start : start + len(theta)]
            left = rows.gather(2, index)
            right = rows.gather(2, index + 1)
            image += ((1 - weight) * left + weight * right).sum(dim=1)
        return (image * math.pi / self.views).view(batch, self.size, self.size)


class PolychromaticScanner:
    """Simulates a CT slice batch from basis-material maps; returns HU images."""

    def __init__(
        self,
        size: int,
        pixel_cm: float,
        protocol: ScanProtocol | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.protocol = protocol or ScanProtocol()
        self.geometry = ParallelBeamCT(size, pixel_cm, self.protocol.views, device)
        energies, weights = tungsten_spectrum(self.protocol.kvp, self.protocol.aluminium_mm)
        self.device = self.geometry.device
        self.weights = torch.tensor(weights, dtype=torch.float32, device=self.device)
        self.mu_rho = torch.tensor(
            np.stack([mass_attenuation(m, energies) for m in MATERIALS]),
            dtype=torch.float32,
            device=self.device,
        )  # (materials, energies)
        self.mu_water_ref = float(mass_attenuation("water", np.array([REFERENCE_KEV]))[0])
        # water beam-hardening correction: polychromatic log projection -> 70 keV water projection
        thickness = np.linspace(0.0, 80.0, 2001)
        mu_w = mass_attenuation("water", energies)
        poly = -np.log((weights[None, :] * np.exp(-np.outer(thickness, mu_w))).sum(axis=1))
        self.bhc_poly = torch.tensor(poly, dtype=torch.float32, device=self.device)
        self.bhc_mono = torch.tensor(
            thickness * self.mu_water_ref, dtype=torch.float32, device=self.device
        )

    def _water_correction(self, p: torch.Tensor) -> torch.Tensor:
        index = torch.searchsorted(self.bhc_poly, p.contiguous()).clamp(1, len(self.bhc_poly) - 1)
        x0, x1 = self.bhc_poly[index - 1], self.bhc_poly[index]
        y0, y1 = self.bhc_mono[index - 1], self.bhc_mono[index]
        slope = (y1 - y0) / (x1 - x0)
        return y0 + (p - x0) * slope  # extrapolates linearly beyond 80 cm of water

    def scan(
        self, densities: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """densities: (B, 4, S, S) partial densities (g/cm^3) of water, bone, titanium, CoCr.
        Returns (B, S, S) reconstructed HU. With `generator`, the Poisson noise is reproducible."""
        batch = densities.shape[0]
        flat = densities.to(self.device, torch.float32).flatten(0, 1)
        paths = self.geometry.project(flat).view(
            batch, len(MATERIALS), self.geometry.views, -1
        )  # g/cm^2
        transmitted = torch.zeros(
            batch, self.geometry.views, self.geometry.bins, device=self.device
        )
        for energy in range(self.weights.shape[0]):  # I / I0, one energy at a time (bounded memory)
            exponent = torch.einsum("bmvd,m->bvd", paths, self.mu_rho[:, energy])
            transmitted += self.weights[energy] * torch.exp(-exponent)
        photons = self.protocol.photons
        counts = torch.poisson(transmitted * photons, generator=generator).clamp_min(1.0)
        projection = -torch.log(counts / photons)
        mu = self.geometry.fbp(self._water_correction(projection))
        return 1000.0 * (mu / self.mu_water_ref - 1.0)


def material_maps(tissue: np.ndarray, density_scale: np.ndarray | None = None) -> torch.Tensor:
    """(B, S, S) tissue ids -> (B, 4, S, S) partial densities from tissues.TISSUES.

    density_scale: optional per-tissue multiplier (per-subject variation)."""
    table = np.array([[t.water, t.bone, t.titanium, t.cocr] for t in TISSUES], dtype=np.float32)
    if density_scale is not None:
        table = table * density_scale[:, None]
    return torch.from_numpy(np.moveaxis(table[tissue], -1, 1).copy())
