"""Architecture checks against the layer tables of adn_architecture.md."""

import pytest
import torch

from madn_core.config import MADNConfig
from madn_core.model import MADN
from madn_core.networks import Decoder, Encoder, PatchDiscriminator


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def expected_default_count(c: int) -> int:
    """Parameters of the default model, counted from the layer tables (not from the code)."""
    res = 2 * conv(3, 256, 256)
    encoder = conv(7, c, 64) + conv(4, 64, 128) + conv(4, 128, 256) + 4 * res
    artefact_encoder = (
        conv(7, c, 64) + conv(4, 64, 128) + conv(4, 128, 256)
    )  # 3 sides: no res blocks
    decoder = 4 * res + conv(5, 256, 128) + 2 * 128 + conv(5, 128, 64) + 2 * 64 + conv(7, 64, c)
    fusions = conv(1, 512, 256) + conv(1, 256, 128) + conv(1, 128, 64)
    discriminator = conv(4, c, 64) + conv(4, 64, 128) + conv(4, 128, 256) + conv(4, 256, 1)
    return 2 * encoder + artefact_encoder + 2 * decoder + fusions + 2 * discriminator


@pytest.mark.parametrize(
    ("variant", "channels", "pinned"), [("adn-ct", 1, 24_409_156), ("madn", 2, 24_426_886)]
)
def test_default_parameter_count(variant: str, channels: int, pinned: int) -> None:
    model = MADN(MADNConfig(variant=variant))
    count = sum(p.numel() for p in model.parameters())
    assert count == expected_default_count(channels) == pinned


def test_module_sizes_match_reference() -> None:
    """ADN's reference: encoder ~5.4M, decoders ~5.8-5.9M, discriminator ~0.66M parameters."""
    model = MADN(MADNConfig(variant="madn"))

    def size(module: torch.nn.Module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    assert 5.3 < size(model.encoder_clean) < 5.5
    assert 5.7 < size(model.decoder_clean) < 5.8 < size(model.decoder_corrupt) < 6.0
    assert 0.65 < size(model.discriminator_clean) < 0.67


@pytest.mark.parametrize("size", [256, 32])
def test_shapes(size: int) -> None:
    base = 64 if size == 256 else 8
    encoder = Encoder(2, base)
    code, features = encoder(torch.zeros(1, 2, size, size))
    assert code.shape == (1, 4 * base, size // 4, size // 4)
    assert [f.shape[1] for f in features[-3:]] == [4 * base, 2 * base, base]
    assert features[-1].shape[-1] == size
    decoder = Decoder(2, base, num_sides=3)
    out = decoder(code, features)
    assert out.shape == (1, 2, size, size)
    assert out.abs().max() <= 1.0
    logits = PatchDiscriminator(2, base)(out)
    assert logits.shape == (1, 1, size // 4 - 2, size // 4 - 2)


def test_decoder_rejects_missing_sides() -> None:
    decoder = Decoder(1, 8, num_sides=3)
    with pytest.raises(ValueError, match="expects 3 side features, got 0"):
        decoder(torch.zeros(1, 32, 8, 8))


def test_patch_receptive_field_is_34() -> None:
    """One perturbed pixel changes a band of logits as wide as a 34-px field at stride 4 (no norm:
    instance norm would couple every pixel)."""
    torch.manual_seed(0)
    disc = PatchDiscriminator(1, 8, norm="none").eval()
    x = torch.randn(1, 1, 96, 96)
    y = x.clone()
    y[0, 0, 48, 48] += 10.0
    changed = (disc(y) - disc(x)).abs()[0, 0] > 0
    rows = changed.any(dim=1).nonzero().flatten()
    assert 8 <= rows.numel() <= 9  # ceil(34 / 4) logits along each axis see the pixel
    assert rows.max() - rows.min() + 1 == rows.numel()
