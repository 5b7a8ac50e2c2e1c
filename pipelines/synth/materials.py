"""X-ray attenuation of the phantom's materials from elemental compositions (xraydb).

Mass attenuation coefficients (cm^2/g, total with coherent scattering) come from xraydb's
tables (Elam, Ravel and Sieber, Radiat. Phys. Chem. 63, 2002), evaluated at any energy; a
compound's mu/rho is the mass-fraction-weighted sum of its elements'. Compositions (mass
fractions) of the body tissues are ICRU Report 44's as tabulated by NIST; the implant alloys
are their ASTM nominal compositions (docs/synthesis.md lists all of them).

Low-Z tissues are projected through two basis materials, water and cortical bone (the
Alvarez-Macovski two-basis decomposition): `two_basis_densities` fits the partial densities of
water and bone whose attenuation matches a tissue's over the scanner's spectrum, so fat, muscle,
marrow or polyethylene each get their own energy dependence at the cost of two projections.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# mass fractions; ICRU-44 body tissues (NIST), ASTM nominal alloys
COMPOSITIONS: dict[str, dict[str, float]] = {
    "water": {"H": 0.111898, "O": 0.888102},
    "adipose": {
        "H": 0.114,
        "C": 0.598,
        "N": 0.007,
        "O": 0.278,
        "Na": 0.001,
        "S": 0.001,
        "Cl": 0.001,
    },
    "muscle": {
        "H": 0.102,
        "C": 0.143,
        "N": 0.034,
        "O": 0.710,
        "Na": 0.001,
        "P": 0.002,
        "S": 0.003,
        "Cl": 0.001,
        "K": 0.004,
    },
    "bone": {
        "H": 0.034,
        "C": 0.155,
        "N": 0.042,
        "O": 0.435,
        "Na": 0.001,
        "Mg": 0.002,
        "P": 0.103,
        "S": 0.003,
        "Ca": 0.225,
    },  # ICRU-44 cortical bone, 1.92 g/cm^3
    "polyethylene": {"C": 0.856, "H": 0.144},  # UHMWPE liner, 0.94 g/cm^3
    "titanium": {"Ti": 0.90, "Al": 0.06, "V": 0.04},  # Ti-6Al-4V (ASTM F136), 4.43 g/cm^3
    "cocr": {"Co": 0.64, "Cr": 0.28, "Mo": 0.06, "Ni": 0.01, "Fe": 0.01},  # CoCrMo (ASTM F75), 8.3
    "aluminium": {"Al": 1.0},  # tube filtration, 2.699 g/cm^3
}

REFERENCE_KEV = 70.0


@lru_cache(maxsize=64)
def _mass_attenuation_cached(material: str, energies_kev: tuple[float, ...]) -> np.ndarray:
    import xraydb  # a pipelines dependency; imported here to keep module import light

    if material not in COMPOSITIONS:
        raise ValueError(f"unknown material {material!r}; expected one of {sorted(COMPOSITIONS)}")
    energies_ev = np.asarray(energies_kev, dtype=np.float64) * 1000.0
    total = np.zeros(len(energies_kev))
    for element, fraction in COMPOSITIONS[material].items():
        total += fraction * np.asarray(xraydb.mu_elam(element, energies_ev, kind="total"))
    return total


def mass_attenuation(material: str, energies_kev: np.ndarray) -> np.ndarray:
    """mu/rho (cm^2/g) of `material` at `energies_kev` (any shape of energies in keV)."""
    energies = np.asarray(energies_kev, dtype=np.float64)
    flat = tuple(float(e) for e in energies.ravel())
    return _mass_attenuation_cached(material, flat).reshape(energies.shape)


def two_basis_densities(
    components: tuple[tuple[str, float], ...], energies_kev: np.ndarray, weights: np.ndarray
) -> tuple[float, float]:
    """Partial densities (g/cm^3) of water and bone that attenuate like a tissue.

    components: (material, partial density g/cm^3) pairs making up the tissue; energies_kev,
    weights: the spectrum. The fit is least squares on mu(E), weighted by the spectrum, so the
    tissue's HU and its beam hardening are both reproduced."""
    target = sum(density * mass_attenuation(m, energies_kev) for m, density in components)
    basis = np.stack(
        [mass_attenuation("water", energies_kev), mass_attenuation("bone", energies_kev)]
    )
    w = np.sqrt(np.asarray(weights, dtype=np.float64))
    solution, *_ = np.linalg.lstsq((basis * w).T, target * w, rcond=None)
    return float(solution[0]), float(solution[1])


def hounsfield(components: tuple[tuple[str, float], ...], kev: float = REFERENCE_KEV) -> float:
    """The CT number (HU) of a tissue at a monochromatic energy (keV)."""
    energy = np.array([kev])
    mu = sum(density * mass_attenuation(m, energy)[0] for m, density in components)
    return float(1000.0 * (mu / mass_attenuation("water", energy)[0] - 1.0))
