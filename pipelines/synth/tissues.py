"""Tissue classes of the phantom and their CT, MRI and susceptibility properties.

CT: each tissue is a list of (material, partial density g/cm^3) from `materials.COMPOSITIONS`
(ICRU-44 tissues, ASTM implant alloys); the scanner projects low-Z tissues through the water
and bone basis fitted to their attenuation (materials.two_basis_densities) and the two alloys
through their own maps. MRI: relative intensities of a T1-weighted spin echo (fat brightest)
and of a second, T2/PD-like contrast (fluid brightest). chi: volume susceptibility in ppm (SI),
Schenck, Med. Phys. 23, 1996, for water, fat, bone and air; titanium alloy and CoCrMo as
reported there and in the implant literature (docs/synthesis.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    name: str
    components: tuple[tuple[str, float], ...]  # (material, partial density g/cm^3)
    t1: float  # relative T1-weighted intensity, 0..1 (fat 1)
    t2: float  # relative T2/PD-weighted intensity, 0..1 (fluid 1)
    chi_ppm: float  # volume susceptibility, ppm (SI)


(
    AIR,
    FAT,
    MUSCLE,
    BLADDER,
    MARROW,
    CORTICAL,
    TITANIUM,
    COCR,
    POLYETHYLENE,
    YELLOW_MARROW,
    BLOOD,
    BOWEL,
    SOFT,
) = range(13)

TISSUES: tuple[Tissue, ...] = (
    Tissue("air", (), 0.0, 0.0, 0.36),
    Tissue("fat", (("adipose", 0.93),), 1.00, 0.80, -7.8),
    Tissue("muscle", (("muscle", 1.06),), 0.35, 0.30, -9.05),
    Tissue("urine", (("water", 1.01),), 0.12, 1.00, -9.05),
    # cancellous bone with red marrow (pelvis, proximal femur)
    Tissue("marrow", (("muscle", 0.55), ("adipose", 0.38), ("bone", 0.28)), 0.70, 0.55, -9.5),
    Tissue("cortical", (("bone", 1.92),), 0.03, 0.03, -11.4),
    Tissue("titanium", (("titanium", 4.43),), 0.0, 0.0, 182.0),
    Tissue("cocr", (("cocr", 8.3),), 0.0, 0.0, 900.0),
    Tissue("polyethylene", (("polyethylene", 0.94),), 0.0, 0.0, -9.3),
    # fatty (yellow) marrow of the femoral canal
    Tissue("yellow marrow", (("adipose", 0.80), ("muscle", 0.18)), 0.92, 0.75, -8.0),
    # femoral vessels: blood; flowing blood gives a flow void in spin echo
    Tissue("blood", (("muscle", 1.05),), 0.10, 0.10, -9.05),
    Tissue("rectal content", (("muscle", 0.55), ("adipose", 0.40)), 0.45, 0.45, -9.0),
    # fibrous and visceral soft tissue: bladder and rectal walls, joint capsule, prostate/uterus
    Tissue("soft tissue", (("muscle", 1.04),), 0.30, 0.45, -9.05),
)

METALS = (TITANIUM, COCR)
BONES = (CORTICAL, MARROW, YELLOW_MARROW)

# Muscle labels (docs/data.md): 0 background/other, then the four muscles of the paper.
LABELS = {"GMAX": 1, "GMED": 2, "GMIN": 3, "TFL": 4}
