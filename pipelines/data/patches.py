"""Implant-centred training patches (`train.patch_focus`, docs/model.md ablation 8).

Uniform random 64 px crops of a 256 px slice rarely hold the implant: most of what the
artefact-domain discriminator sees is anatomy or air without artefact, so ADN's artefact branch
(E_a -> G_Ia) never learns to draw the artefact onto a clean slice, and the self-reduction term
never shows the network a signal void to fill. With focus f, each artefact-affected slice is
cropped around a random metal pixel of its own with probability f (jittered by up to a quarter
of the side, clamped to the slice), else uniformly. The clean slice it is paired with is cropped
at the same place: the slices are unpaired, but at the same position of the field of view a
clean slice shows the hip anatomy the implant replaced, which is what the artefact transfer and
the discriminators should compare it with.
"""

from __future__ import annotations

import numpy as np
import torch

JITTER = 0.25  # of the side: how far the crop centre may move from the chosen metal pixel


def focused_corners(
    metal: np.ndarray, side: int, focus: float, rng: np.random.Generator
) -> np.ndarray:
    """(B, 2) int top-left corners (row, column) of `side` px crops of (B, H, W) slices whose
    bool `metal` masks are given: centred near a metal pixel with probability `focus` (slices
    without metal are cropped uniformly)."""
    count, height, width = metal.shape
    corners = np.empty((count, 2), np.int64)
    for i in range(count):
        rows, cols = np.nonzero(metal[i])
        if len(rows) and rng.random() < focus:
            pick = rng.integers(len(rows))
            jitter = rng.integers(-int(JITTER * side), int(JITTER * side) + 1, size=2)
            centre = np.array([rows[pick], cols[pick]]) + jitter
            corners[i] = centre - side // 2
        else:
            corners[i] = rng.integers(0, [height - side + 1, width - side + 1])
    corners[:, 0] = corners[:, 0].clip(0, height - side)
    corners[:, 1] = corners[:, 1].clip(0, width - side)
    return corners


def crop_at(batch: torch.Tensor, corners: np.ndarray, side: int) -> torch.Tensor:
    """(B, C, side, side) crops of the (B, C, H, W) batch at the (B, 2) top-left corners."""
    return torch.stack(
        [
            image[:, top : top + side, left : left + side]
            for image, (top, left) in zip(batch, corners.tolist(), strict=True)
        ]
    )
