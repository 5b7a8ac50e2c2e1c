"""The inference half of a trained MADN, as deployed (e.g. logged with `mlflow.pytorch`).

`Corrector(model)` keeps only E_Ia, G_I and the gate (with `network.gated`): forward(x^a) =
G_I(E_Ia(x^a)), images (N, C, H, W) in [-1, 1] (C = 1 for adn-ct/adn-mr, 2 for CT+MRI variants:
channel 0 CT, channel 1 MRI) to the artefact-reduced images of the same shape. It exposes
`config` and `correct` like MADN, so code that applies a model (volume correction, evaluation)
takes either.
"""

from __future__ import annotations

import torch
from torch import nn

from madn_core.config import MADNConfig
from madn_core.correction import correct_images
from madn_core.model import MADN


class Corrector(nn.Module):
    """x^a (N, C, H, W) in [-1, 1] -> x̂ (N, C, H, W) in [-1, 1]; see the module doc."""

    def __init__(self, model: MADN) -> None:
        super().__init__()
        self.config: MADNConfig = model.config
        self.encoder = model.encoder_corrupt
        self.decoder = model.decoder_clean
        self.gate = model.gate

    def forward(self, corrupted: torch.Tensor, metal: torch.Tensor | None = None) -> torch.Tensor:
        """As `MADN.correct`: metal fill and implant band included (`madn_core.correction`)."""
        return correct_images(self.config, self.encoder, self.decoder, corrupted, metal, self.gate)

    @torch.no_grad()
    def correct(self, corrupted: torch.Tensor, metal: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward(corrupted, metal)
