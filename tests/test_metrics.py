import math

import pytest
import torch

from madn_core.metrics import dice, masked_std, psnr, ssim


def test_psnr_known_value_and_range_awareness() -> None:
    target = torch.zeros(2, 1, 8, 8)
    pred = target + 0.1  # MSE 0.01
    assert torch.allclose(
        psnr(pred, target, data_range=2.0), torch.full((2,), 10 * math.log10(4 / 0.01))
    )
    assert torch.allclose(
        psnr(pred * 1500, target, data_range=3000.0), psnr(pred, target, data_range=2.0)
    )
    assert torch.isinf(psnr(target, target, 2.0)).all()


def test_psnr_inside_mask_ignores_outside() -> None:
    target = torch.zeros(1, 1, 8, 8)
    pred = target.clone()
    pred[..., :4] = 1.0
    mask = torch.zeros_like(target, dtype=torch.bool)
    mask[..., 4:] = True
    assert torch.isinf(psnr(pred, target, 2.0, mask)).all()
    assert torch.isfinite(psnr(pred, target, 2.0)).all()


def test_ssim_identity_and_degradation() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 32, 32, generator=g)
    assert torch.allclose(ssim(x, x, 1.0), torch.ones(2), atol=1e-5)
    noisy = x + 0.2 * torch.randn(x.shape, generator=g)
    slightly = x + 0.02 * torch.randn(x.shape, generator=g)
    assert (ssim(noisy, x, 1.0) < ssim(slightly, x, 1.0)).all()
    assert (ssim(slightly, x, 1.0) < 1.0).all()
    with pytest.raises(ValueError, match="data_range must be > 0"):
        ssim(x, x, 0.0)


def test_ssim_matches_scikit_image() -> None:
    """The separable window gives Wang et al.'s SSIM as scikit-image computes it (Gaussian
    weights, std 1.5, population covariance), per sample and per channel."""
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(1)
    target = torch.rand(3, 2, 40, 36, generator=g)
    pred = target + 0.1 * torch.randn(target.shape, generator=g)
    ours = ssim(pred, target, 2.0)
    for i in range(3):
        theirs = [
            structural_similarity(
                pred[i, c].double().numpy(),
                target[i, c].double().numpy(),
                data_range=2.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for c in range(2)
        ]
        assert ours[i].item() == pytest.approx(sum(theirs) / 2, abs=1e-5)


def test_masked_std_in_hu() -> None:
    values = torch.tensor([[[40.0, 60.0], [1000.0, -1000.0]]])
    mask = torch.tensor([[[True, True], [False, False]]])
    assert torch.allclose(masked_std(values, mask), torch.tensor([10.0]))
    assert torch.isnan(masked_std(values, torch.zeros_like(mask))).all()


def test_dice() -> None:
    a = torch.tensor([[1, 1, 2, 0]])
    b = torch.tensor([[1, 0, 2, 2]])
    assert torch.allclose(dice(a, b, 1), torch.tensor([2 / 3]))
    assert torch.allclose(dice(a, b, 2), torch.tensor([2 / 3]))
    assert torch.allclose(dice(a, a, 1), torch.tensor([1.0]))
    assert torch.isnan(dice(a, b, 4)).all()
