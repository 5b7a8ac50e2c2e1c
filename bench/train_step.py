"""Slices per second of one full MADN training step (all generator paths, both discriminators).

Default ADN widths (base 64), 256 x 256, batch 4, 2 channels (CT + MRI), LNCC sigma 5, full cycle.
On CPU: fp32. On a GPU: fp32 (the baseline), bf16 autocast, and bf16 + channels_last. Achieved
TFLOP/s are computed against the step's convolution count, measured by forward hooks on every
Conv2d during one step (2 x MACs), times 3 for forward + backward (backward ~ 2 x forward).

    .venv/bin/python bench/train_step.py [--device cpu|cuda] [--steps N] [--batch 4] [--size 256]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from madn_core.config import MADNConfig
from madn_core.trainer import Trainer


def conv_forward_flops(trainer: Trainer, corrupted: torch.Tensor, clean: torch.Tensor) -> int:
    """FLOPs (2 x multiply-adds) of every convolution run in the forward passes of one step."""
    total = 0

    def hook(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        k_h, k_w = module.kernel_size
        total += 2 * output.numel() * (module.in_channels // module.groups) * k_h * k_w

    handles = [
        m.register_forward_hook(hook) for m in trainer.model.modules() if isinstance(m, nn.Conv2d)
    ]
    try:
        trainer.train_step(corrupted, clean)
    finally:
        for handle in handles:
            handle.remove()
    return total


def measure(
    config: MADNConfig, device: torch.device, steps: int, batch: int, size: int
) -> tuple[float, int]:
    """(slices per second, forward conv FLOPs per step) for one precision setting."""
    trainer = Trainer(config, device=device)
    generator = torch.Generator().manual_seed(0)
    corrupted = (torch.rand(batch, 2, size, size, generator=generator) * 2 - 1).to(device)
    clean = (torch.rand(batch, 2, size, size, generator=generator) * 2 - 1).to(device)
    flops = conv_forward_flops(trainer, corrupted, clean)  # also the warm-up step
    trainer.train_step(corrupted, clean)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(corrupted, clean)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    return batch / seconds, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps (default: 3 CPU, 30 GPU)"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (30 if device.type == "cuda" else 3)
    base = MADNConfig.from_dict(
        {"variant": "madn", "image_size": args.size, "train": {"batch_size": args.batch}}
    )
    settings = {"fp32": base}
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        settings["bf16 autocast"] = base.with_overrides({"train.amp": True})
        settings["bf16 + channels_last"] = base.with_overrides(
            {"train.amp": True, "train.channels_last": True}
        )
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; torch {torch.__version__}")
    print(f"MADN step, batch {args.batch} x 2 x {args.size} x {args.size}, {steps} timed steps")
    baseline = None
    for label, config in settings.items():
        rate, flops = measure(config, device, steps, args.batch, args.size)
        baseline = baseline or rate
        tflops = 3 * flops * rate / args.batch / 1e12
        print(
            f"  {label:22s} {rate:8.2f} slices/s  ({rate / baseline:4.2f}x fp32)  "
            f"conv fwd {flops / 1e9:.1f} GFLOP/step, ~{tflops:.3f} TFLOP/s (fwd+bwd = 3 x fwd)"
        )


if __name__ == "__main__":
    main()
