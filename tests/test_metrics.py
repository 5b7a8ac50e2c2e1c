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
