"""Properties of the similarity measures that a wrong implementation fails."""

import pytest
import torch
import torch.nn.functional as F

from madn_core.similarity import (
    cc,
    gaussian_filter,
    get_similarity,
    lncc,
    lncc_map,
    nmi,
    similarity_loss,
)

NAMES = ["lncc", "cc", "nmi"]


def textured(seed: int, n: int = 3, size: int = 48) -> torch.Tensor:
    """(n, 1, size, size) smooth random images with structure at several scales."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(n, 1, 6, 6, generator=g), size=(size, size), mode="bicubic")
    fine = F.interpolate(torch.rand(n, 1, 16, 16, generator=g), size=(size, size), mode="bicubic")
    return coarse + 0.5 * fine


def measure(name: str):
    return get_similarity(name, sigma=3.0, nmi_bins=32)


@pytest.mark.parametrize("name", NAMES)
def test_self_similarity_is_one(name: str) -> None:
    x = textured(0)
    assert torch.allclose(measure(name)(x, x), torch.ones(3), atol=2e-3)


@pytest.mark.parametrize("name", NAMES)
def test_negated_copy(name: str) -> None:
    x = textured(1)
    assert torch.allclose(measure(name)(x, -x).abs(), torch.ones(3), atol=2e-3)


def test_signs() -> None:
    x = textured(1)
    assert (cc(x, -x) < -0.99).all()
    assert (lncc_map(x, -x, 3.0) < -0.9).float().mean() > 0.99


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("scale", "shift"), [(2.5, 0.3), (-0.7, 4.0), (40.0, -100.0)])
def test_affine_invariance(name: str, scale: float, shift: float) -> None:
    x, y = textured(2), textured(3)
    f = measure(name)
    assert torch.allclose(f(x, y).abs(), f(scale * x + shift, y).abs(), atol=2e-4)


@pytest.mark.parametrize("name", NAMES)
def test_symmetry_and_range(name: str) -> None:
    x, y = textured(4), textured(5)
    f = measure(name)
    s = f(x, y)
    assert torch.allclose(s, f(y, x), atol=1e-5)
    assert ((s.abs() >= 0) & (s.abs() <= 1)).all()


@pytest.mark.parametrize("name", NAMES)
def test_noise_is_less_similar_than_related_image(name: str) -> None:
    x = textured(6)
    related = x + 0.1 * textured(7)
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(8))
    f = measure(name)
    assert (f(x, related).abs() > f(x, noise).abs() + 0.2).all()


@pytest.mark.parametrize("name", NAMES)
def test_constant_images_are_finite(name: str) -> None:
    a = torch.full((2, 1, 32, 32), 0.7, requires_grad=True)
    b = textured(9, n=2, size=32).requires_grad_(True)
    f = measure(name)
    for pair in ((a, b), (a, a)):
        value = f(*pair)
        assert torch.isfinite(value).all()
        similarity_loss(*pair, f).backward()
        for tensor in {id(t): t for t in pair}.values():
            assert torch.isfinite(tensor.grad).all()
            tensor.grad = None
    assert torch.allclose(f(a, b), torch.zeros(2), atol=1e-3)


def test_lncc_with_huge_sigma_approaches_cc() -> None:
    x, y = textured(10), textured(11)
    y = y - 0.5 * x  # partly (anti)correlated
    assert torch.allclose(lncc(x, y, sigma=1e4), cc(x, y).abs(), atol=1e-3)
    assert not torch.allclose(lncc(x, y, sigma=2.0), cc(x, y).abs(), atol=1e-2)


def test_nmi_prefers_nonlinear_remap_over_noise() -> None:
    x = textured(12)
    remapped = torch.exp(3.0 * x) - x.square()
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(13))
    assert (nmi(x, remapped) > 0.6).all()
    assert (nmi(x, remapped) > nmi(x, noise) + 0.4).all()
    # CC misses much of a non-monotone remap that NMI still captures
    bump = (x - x.mean()).square()
    assert (nmi(x, bump) > cc(x, bump).abs()).all()


def test_separable_filter_matches_direct_convolution() -> None:
    x = torch.rand(2, 5, 40, 40, generator=torch.Generator().manual_seed(14))
    separable = gaussian_filter(x, 5.0)
    direct = gaussian_filter(x, 5.0, separable=False)
    assert torch.allclose(separable, direct, rtol=1e-5, atol=1e-6)


def test_normalised_filter_keeps_constants_at_the_border() -> None:
    x = torch.full((1, 1, 20, 30), 3.0)
    assert torch.allclose(gaussian_filter(x, 5.0), x)


def test_lncc_map_shape_and_reflection_of_sign() -> None:
    x, y = textured(15, n=2), textured(16, n=2)
    r = lncc_map(x, y, sigma=2.0)
    assert r.shape == (2, 1, 48, 48)
    assert torch.allclose(lncc_map(x, -y, sigma=2.0), -r, atol=1e-5)


def test_computed_in_float32_under_autocast() -> None:
    x, y = textured(17), textured(18)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = lncc(x.bfloat16(), y.bfloat16(), sigma=3.0)
    assert value.dtype == torch.float32


def test_bad_shapes_and_names() -> None:
    with pytest.raises(ValueError, match="same shape"):
        cc(torch.zeros(1, 8, 8), torch.zeros(1, 8, 9))
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        cc(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="similarity must be one of lncc, cc, nmi, got 'mi'"):
        get_similarity("mi")
