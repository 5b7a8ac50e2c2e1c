"""Tissue classes of the phantom and their CT, MRI and susceptibility properties.

CT: each tissue is a mix of three basis materials given as partial densities (g/cm^3) of water,
cortical bone (ICRU-44, 1.92 g/cm^3) and one metal (titanium alloy or CoCrMo, modelled as iron),
chosen so that the 70 keV attenuation gives the usual HU (docs/synthesis.md). T1: relative
intensities of a T1-weighted image (fat brightest). chi: volume susceptibility in ppm (SI),
Schenck, Med Phys 1996, for water, fat, bone and air; titanium and CoCrMo as reported there and
in the implant literature.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    name: str
    water: float  # partial density of water-equivalent material, g/cm^3
    bone: float  # partial density of cortical bone, g/cm^3
    titanium: float  # partial density of titanium, g/cm^3
    cocr: float  # partial density of CoCrMo (iron as attenuation proxy), g/cm^3
    t1: float  # relative T1-weighted intensity, 0..1
    chi_ppm: float  # volume susceptibility, ppm (SI)


AIR, FAT, MUSCLE, BLADDER, MARROW, CORTICAL, TITANIUM, COCR = range(8)

TISSUES: tuple[Tissue, ...] = (
    Tissue("air", 0.0, 0.0, 0.0, 0.0, 0.0, 0.36),
    Tissue("fat", 0.90, 0.0, 0.0, 0.0, 1.00, -7.8),
    Tissue("muscle", 1.05, 0.0, 0.0, 0.0, 0.35, -9.0),
    Tissue("bladder", 1.01, 0.0, 0.0, 0.0, 0.15, -9.0),
    Tissue("marrow", 0.90, 0.30, 0.0, 0.0, 0.80, -9.5),
    Tissue("cortical", 0.0, 1.92, 0.0, 0.0, 0.05, -11.0),
    Tissue("titanium", 0.0, 0.0, 4.43, 0.0, 0.0, 182.0),
    Tissue("cocr", 0.0, 0.0, 0.0, 8.3, 0.0, 900.0),
)

METALS = (TITANIUM, COCR)

# Muscle labels (docs/data.md): 0 background/other, then the four muscles of the paper.
LABELS = {"GMAX": 1, "GMED": 2, "GMIN": 3, "TFL": 4}
