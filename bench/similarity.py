"""LNCC forward+backward: separable Gaussian filtering against one direct 2D convolution.

Batch 8 x 2 x 256 x 256 (LNCC between channel 0, CT, and channel 1, MRI), sigma 5 px truncated at
3 sigma (31 taps). Both paths compute the same normalised convolution; the direct one uses the
full 31x31 window. Prints both times, their ratio and how closely
the two agree (must be within 1e-5).

    .venv/bin/python bench/similarity.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from madn_core.similarity import lncc_map


def time_forward_backward(
    images: torch.Tensor, separable: bool, repeats: int
) -> tuple[float, torch.Tensor]:
    """Median seconds of one forward+backward of 1 - mean|LNCC|, and the LNCC map."""
    times = []
    result = None
    for _ in range(repeats + 1):  # first call warms up
        x = images.detach().clone().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        r = lncc_map(x[:, :1], x[:, 1:], sigma=5.0, separable=separable)
        (1.0 - r.abs().mean()).backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        result = r.detach()
    return statistics.median(times[1:]), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 2, 256, 256, generator=generator).to(device)
    images = torch.nn.functional.avg_pool2d(images, 5, stride=1, padding=2)  # some local structure

    separable_s, separable_r = time_forward_backward(images, True, args.repeats)
    direct_s, direct_r = time_forward_backward(images, False, args.repeats)
    # normwise relative difference of the LNCC maps (|r| <= 1) and relative difference of the loss
    rel = ((separable_r - direct_r).abs().max() / direct_r.abs().max()).item()
    loss_s, loss_d = 1 - separable_r.abs().mean(), 1 - direct_r.abs().mean()
    rel_loss = ((loss_s - loss_d).abs() / loss_d.abs()).item()
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    print(
        f"device: {device.type} ({name}), torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    print(
        "LNCC sigma 5 (31 taps), batch 8 x 2 x 256 x 256, forward+backward, median of", args.repeats
    )
    print(f"  direct 2D (baseline): {direct_s * 1e3:8.1f} ms")
    print(f"  separable:            {separable_s * 1e3:8.1f} ms")
    print(f"  speed-up: {direct_s / separable_s:.1f}x")
    print(f"  LNCC map max|diff| / max|r|: {rel:.1e}   loss relative difference: {rel_loss:.1e}")
    if max(rel, rel_loss) > 1e-5:
        raise SystemExit(f"separable and direct LNCC disagree: {max(rel, rel_loss):.2e} > 1e-5")


if __name__ == "__main__":
    main()
