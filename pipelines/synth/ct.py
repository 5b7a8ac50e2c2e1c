"""Polychromatic CT simulation with metal: projection, Poisson noise, water BHC, FBP (torch).

Protocol (docs/synthesis.md): basis-material maps (partial densities of water, cortical bone,
titanium alloy, CoCrMo; low-Z tissues enter through their fitted water/bone basis,
`materials.two_basis_densities`) are forward projected in fan-beam geometry with an arc detector
(`geometry.FanBeamCT`, the default) or in parallel beam; for every energy of a 120 kVp tungsten
spectrum (1 keV steps) with 2.5 mm Al filtration the detected intensity is
I = sum_E S(E) exp(-sum_m (mu/rho)_m(E) L_m) (xraydb attenuation), plus a constant scatter
background; photon counts are Poisson with `photons` incident per ray and floored at one
(photon starvation: the log stays finite), the log projection gets the usual water
beam-hardening correction to 70 keV, and the slice is reconstructed by filtered
back-projection and converted to HU. Beam hardening by metal and bone and photon starvation
behind metal then produce the dark and bright streaks. Everything runs on any torch device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipelines.synth.geometry import FanBeamCT, ParallelBeamCT
from pipelines.synth.materials import REFERENCE_KEV, mass_attenuation, two_basis_densities
from pipelines.synth.tissues import TISSUES

MATERIALS = ("water", "bone", "titanium", "cocr")
ALUMINIUM_DENSITY = 2.699
GEOMETRIES = ("fan", "parallel")


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
    scatter_photons: constant scatter counts per ray added before the noise (1 per 1e6: the
    scatter-to-primary ratio of ADN's 20 per 2e7); geometry: "fan"
    (arc detector, 320 views over 360 degrees, source `source_px` pixels from the isocentre) or
    "parallel" (ceil(pi/2 * size) views over 180 degrees); views: None for the geometry's
    default."""

    kvp: float = 120.0
    aluminium_mm: float = 2.5
    photons: float = 1e6
    scatter_photons: float = 1.0
    geometry: str = "fan"
    views: int | None = None
    source_px: float = 1075.0

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"CT geometry must be one of {GEOMETRIES}, got {self.geometry!r}")

    def build(self, size: int, pixel_cm: float, device: str | torch.device):
        """The acquisition geometry for `size` pixels of `pixel_cm`."""
        if self.geometry == "parallel":
            return ParallelBeamCT(size, pixel_cm, self.views, device)
        return FanBeamCT(size, pixel_cm, self.views or 320, self.source_px, device)


def tissue_basis_table(energies_kev: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(tissues, 4) partial densities (g/cm^3) of water, bone, titanium, CoCrMo per tissue."""
    table = np.zeros((len(TISSUES), len(MATERIALS)), dtype=np.float32)
    for index, tissue in enumerate(TISSUES):
        low_z = tuple((m, d) for m, d in tissue.components if m not in ("titanium", "cocr"))
        if low_z:
            table[index, :2] = two_basis_densities(low_z, energies_kev, weights)
        for m, d in tissue.components:
            if m in ("titanium", "cocr"):
                table[index, MATERIALS.index(m)] = d
    return table


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
        self.geometry = self.protocol.build(size, pixel_cm, device)
        energies, weights = tungsten_spectrum(self.protocol.kvp, self.protocol.aluminium_mm)
        self.device = self.geometry.device
        self.basis_table = tissue_basis_table(energies, weights)
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

    def _paths(self, densities: torch.Tensor) -> torch.Tensor:
        """(B, 4, S, S) partial densities -> (B, 4, views, bins) mass paths (g/cm^2); maps that
        are zero everywhere (no metal) are not projected."""
        batch, materials = densities.shape[:2]
        views, bins = self.geometry.views, self.geometry.bins
        paths = torch.zeros(batch, materials, views, bins, device=self.device)
        used = [m for m in range(materials) if bool(densities[:, m].any())]
        if used:
            maps = densities[:, used].flatten(0, 1)
            paths[:, used] = self.geometry.project(maps).view(batch, len(used), views, bins)
        return paths

    def scan(
        self, densities: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """densities: (B, 4, S, S) partial densities (g/cm^3) of water, bone, titanium, CoCr.
        Returns (B, S, S) reconstructed HU. With `generator`, the Poisson noise is reproducible."""
        paths = self._paths(densities.to(self.device, torch.float32))
        transmitted = torch.zeros(paths.shape[0], *paths.shape[2:], device=self.device)
        for energy in range(self.weights.shape[0]):  # I / I0, one energy at a time (bounded memory)
            exponent = torch.einsum("bmvd,m->bvd", paths, self.mu_rho[:, energy])
            transmitted += self.weights[energy] * torch.exp(-exponent)
        photons = self.protocol.photons
        expected = transmitted * photons + self.protocol.scatter_photons
        counts = torch.poisson(expected, generator=generator).clamp_min(1.0)
        projection = -torch.log(counts / (photons + self.protocol.scatter_photons))
        mu = self.geometry.fbp(self._water_correction(projection))
        return 1000.0 * (mu / self.mu_water_ref - 1.0)

    def material_maps(self, tissue: np.ndarray, texture: np.ndarray | None = None) -> torch.Tensor:
        """(B, S, S) tissue ids -> (B, 4, S, S) partial densities (g/cm^3).

        texture: optional (B, S, S) multiplier of the low-Z densities (tissue heterogeneity)."""
        maps = np.moveaxis(self.basis_table[tissue], -1, 1).copy()
        if texture is not None:
            maps[:, :2] *= texture[:, None].astype(np.float32)
        return torch.from_numpy(maps)
