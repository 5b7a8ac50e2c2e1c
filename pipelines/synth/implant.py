"""Total hip replacement: femoral stem, neck and head, and an acetabular cup, placed in one
side's femur and acetabulum.

Components (docs/synthesis.md gives the sizes and the sources): a CoCrMo head of 28, 32 or 36 mm;
a titanium-alloy (Ti-6Al-4V) neck along the native neck axis and a tapered stem in the femoral
canal; a hemispherical titanium shell of 3 mm with a polyethylene liner, its opening inclined
about 40 degrees and anteverted about 15. The native femoral head and neck medial to the
osteotomy are resected (soft tissue where no component is); the cup replaces the reamed
acetabular bone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.synth.shapes import Grid, capsule, sphere
from pipelines.synth.tissues import COCR, POLYETHYLENE, SOFT, TITANIUM

HEAD_DIAMETERS_MM = (28.0, 32.0, 36.0)
SHELL_MM = 3.0
STEM_LENGTH_MM = 130.0


@dataclass(frozen=True)
class Implant:
    """One side's prosthesis in that side's grid (x, y, z mm). head_radius: the CoCr ball;
    cup_radius: the shell's outer radius; cup_axis: unit vector out of the cup's opening."""

    centre: np.ndarray
    head_radius: float
    cup_radius: float
    cup_axis: np.ndarray
    neck_direction: np.ndarray
    stem_top: np.ndarray
    stem_axis: np.ndarray

    @staticmethod
    def fit(femur: dict[str, np.ndarray | float], rng: np.random.Generator) -> Implant:
        """A prosthesis sized to the native femur, with per-subject size and cup angles."""
        inclination = np.deg2rad(rng.uniform(35.0, 48.0))
        anteversion = np.deg2rad(rng.uniform(8.0, 22.0))
        axis = np.array(
            [
                np.sin(inclination) * np.cos(anteversion),
                -np.sin(inclination) * np.sin(anteversion),
                np.cos(inclination),
            ]
        )
        native = float(femur["head_radius"])
        head = float(rng.choice(HEAD_DIAMETERS_MM)) / 2
        head = min(head, native - 5.0)
        top, shaft = (
            np.asarray(femur["shaft_top"]),
            np.asarray(femur["shaft_end"]) - np.asarray(femur["shaft_top"]),
        )
        shoulder_z = float(np.asarray(femur["neck_base"])[2]) + 6.0
        stem_top = top + shaft * (shoulder_z - top[2]) / shaft[2]  # on the canal's axis
        return Implant(
            centre=np.asarray(femur["head"]) + rng.uniform(-1.5, 1.5, 3),
            head_radius=head,
            cup_radius=max(native + rng.uniform(1.0, 3.0), head + SHELL_MM + 5.0),
            cup_axis=axis,
            neck_direction=np.asarray(femur["neck_direction"]),
            stem_top=stem_top,
            stem_axis=shaft / np.linalg.norm(shaft),
        )

    def cup_regions(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """(titanium shell, polyethylene liner) boolean volumes: the hemisphere behind the
        opening, between the head and the shell's outer radius."""
        dx, dy, dz = (grid.x - self.centre[0], grid.y - self.centre[1], grid.z - self.centre[2])
        r = np.sqrt(dx**2 + dy**2 + dz**2)
        behind = dx * self.cup_axis[0] + dy * self.cup_axis[1] + dz * self.cup_axis[2] <= 0
        shell = behind & (r <= self.cup_radius) & (r > self.cup_radius - SHELL_MM)
        liner = behind & (r <= self.cup_radius - SHELL_MM) & (r > self.head_radius)
        return shell, liner

    def stem_distance(self, grid: Grid) -> np.ndarray:
        """(K, S, S) signed distance to the neck (trunnion) and the tapered stem."""
        neck_end = self.centre + 30.0 * self.neck_direction
        neck = capsule(grid, self.centre, neck_end, 6.5, 8.0)
        shoulder = capsule(grid, neck_end, self.stem_top, 8.5, 9.5)
        tip = self.stem_top + STEM_LENGTH_MM * self.stem_axis
        body = capsule(grid, self.stem_top, tip, 9.0, 5.0)
        return np.minimum(np.minimum(neck, shoulder), body)

    def resected(self, grid: Grid) -> np.ndarray:
        """The native femoral head and neck medial to the osteotomy (a plane across the neck
        18 mm above the stem's shoulder), as a boolean volume."""
        cut = (
            self.centre
            + (float(np.linalg.norm(self.stem_top - self.centre)) - 18.0) * self.neck_direction
        )
        towards_head = -self.neck_direction
        side = (
            (grid.x - cut[0]) * towards_head[0]
            + (grid.y - cut[1]) * towards_head[1]
            + (grid.z - cut[2]) * towards_head[2]
        )
        return (side > 0) & (sphere(grid, self.centre, self.cup_radius + 20.0) < 0)

    def place(self, grid: Grid, tissue: np.ndarray, femur_mask: np.ndarray) -> None:
        """In place: resect, then paint liner, shell, head and stem (the stem only inside the
        femur's outline)."""
        tissue[self.resected(grid) & femur_mask] = SOFT
        shell, liner = self.cup_regions(grid)
        tissue[liner] = POLYETHYLENE
        tissue[shell] = TITANIUM
        inside_head = sphere(grid, self.centre, self.head_radius) < 0
        tissue[(self.stem_distance(grid) < 0) & ~inside_head & ~liner & ~shell] = TITANIUM
        tissue[inside_head] = COCR
