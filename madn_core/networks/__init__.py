"""ADN blocks, encoders, decoders with artefact-feature fusion, PatchGAN discriminators, and
the correction gate."""

from madn_core.networks.blocks import ConvBlock, LayerNorm2d, ResBlock
from madn_core.networks.decoder import Decoder
from madn_core.networks.discriminator import PatchDiscriminator
from madn_core.networks.encoder import Encoder
from madn_core.networks.gate import Gate

__all__ = [
    "ConvBlock",
    "Decoder",
    "Encoder",
    "Gate",
    "LayerNorm2d",
    "PatchDiscriminator",
    "ResBlock",
]
