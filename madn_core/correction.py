"""The correction path, shared by `MADN.correct` and the exported `Corrector`.

    x̂ = restore(band(shrink(G_I(E_Ia(fill(x^a)))), x^a))

1. **Metal fill** (`network.metal_fill`): the CT pixels of metal are set to FILL_HU (water)
   before the encoder. Metal saturates the CT window (+1 in [-1, 1], against about -0.3 for
   muscle); an encoder that downsamples 4x smears that blob into the tissue around it, and the
   decoder answers with bright and dark rings within a few millimetres of the implant, exactly
   where MAR is judged. Other channels are left as they are (in MRI the implant is a signal
   void already). Training fills the corrupted batch the same way (`madn_core.trainer`).
2. G_I(E_Ia(.)): ADN's artefact-reduced image (with content skips or the residual base when the
   network config enables them), then, with `network.gated`, the learned gate's blend
   g G_I + (1 - g) x^a (`madn_core.networks.Gate`).
3. **Shrunk change** (`network.correction_shrink` = s > 0): the output becomes
   fill(x^a) + soft(G_I - fill(x^a), t), t = 2 s (s of the [-1, 1] range), where
   soft(d, t) = sign(d) max(|d| - t, 0) per pixel and channel: the soft threshold of wavelet
   shrinkage, applied to the network's change. `network.shrink_rule` "garrote" applies
   d (1 - t^2 / d^2) above t instead (a change of several t kept almost whole), "hard" d
   itself. A width-16 decoder cannot reproduce noise texture, so its output is the input
   denoised and slightly blurred; the clean image has the same noise, so those small changes
   cost PSNR and change metal-free slices by about the noise level. Streaks and dark bands
   change the image by hundreds of HU and pass the threshold. `network.mri_shrink` sets the
   MRI channel's own s (0: its change as the decoder made it). `network.correction_smooth_mm`
   instead low-passes the change with a Gaussian (kept as an option: it removes the fine
   streak correction with the noise).
4. **Implant band** (`network.correction_band_mm`, `madn_core.band`): the output is kept near
   the metal and fades back to the input beyond (the MRI channel within `network.mri_band_mm`
   when that is set: MRI artefacts stay near the implant, CT streaks cross the slice).
5. **Metal restore** (with metal fill): the input's own metal pixels go back into the output,
   so the implant stays visible in the corrected image.

`metal` is an (N, 1, H, W) bool mask; when not given it is found in the CT channel
(`madn_core.band.metal_from_ct`). Without a CT channel and without a mask nothing is filled or
banded.
"""

from __future__ import annotations

import torch
from torch import nn

from madn_core.band import metal_distance, metal_from_ct, weight_at_distance
from madn_core.config import MADNConfig
from madn_core.similarity import gaussian_filter

FILL_HU = 0.0  # water: what metal pixels become before the network (metal_fill)


def find_metal(
    config: MADNConfig, images: torch.Tensor, metal: torch.Tensor | None = None
) -> torch.Tensor | None:
    """(N, 1, H, W) bool metal mask of (N, C, H, W) images in [-1, 1]: `metal` reshaped, else
    found in the CT channel (None for a model without one)."""
    if metal is not None:
        return metal.to(images.device).bool().reshape(len(images), 1, *images.shape[2:])
    if "ct" not in config.channels:
        return None
    ct = config.channels.index("ct")
    return metal_from_ct(images[:, ct : ct + 1], config.data.ct_window_hu)


def fill_metal(
    config: MADNConfig, images: torch.Tensor, metal: torch.Tensor | None
) -> torch.Tensor:
    """(N, C, H, W) images with the CT channel set to FILL_HU (mapped through the CT window)
    where `metal` (N, 1, H, W) is true; unchanged without metal_fill, a mask or a CT channel."""
    if not config.network.metal_fill or metal is None or "ct" not in config.channels:
        return images
    low, high = config.data.ct_window_hu
    fill = 2.0 * (FILL_HU - low) / (high - low) - 1.0
    return fill_channel(images, config.channels.index("ct"), metal, fill)


def fill_channel(
    images: torch.Tensor, channel: int, mask: torch.Tensor, value: float
) -> torch.Tensor:
    """A copy of (N, C, H, W) `images` with `channel` set to `value` where the (N, 1, H, W)
    bool `mask` is true; the other channels are unchanged."""
    filled = images.clone()
    filled[:, channel : channel + 1] = images[:, channel : channel + 1].masked_fill(mask, value)
    return filled


def correct_images(
    config: MADNConfig,
    encoder: nn.Module,
    decoder: nn.Module,
    corrupted: torch.Tensor,
    metal: torch.Tensor | None = None,
    gate: nn.Module | None = None,
) -> torch.Tensor:
    """x^a (N, C, H, W) in [-1, 1] -> x̂ (N, C, H, W) in [-1, 1] through steps 1-5 of the
    module doc, with `encoder` E_Ia, `decoder` G_I and the model's `gate` (None: ungated)."""
    net = config.network
    needs_mask = net.metal_fill or net.correction_band_mm > 0
    mask = find_metal(config, corrupted, metal) if needs_mask else None
    image = fill_metal(config, corrupted, mask)
    code, features = encoder(image)
    base = image if any(config.residual_mask) else None
    corrected = decoder(code, features if net.content_skips else None, base)
    if gate is not None:
        corrected = gate.blend(image, corrected)
    if net.correction_smooth_mm > 0:
        corrected = smooth_change(config, image, corrected)
    shrinks = channel_shrinks(config)
    if any(s > 0 for s in shrinks):
        thresholds = torch.tensor(shrinks, dtype=corrected.dtype, device=corrected.device)
        per_channel = 2.0 * thresholds.view(1, -1, 1, 1)  # s of the [-1, 1] range
        corrected = shrink_change(image, corrected, per_channel, net.shrink_rule)
    if net.correction_band_mm > 0 and mask is not None:
        corrected = blend_channels_in_band(config, corrected, corrupted, mask)
    if net.metal_fill and mask is not None:
        corrected = torch.where(mask.expand_as(corrected), corrupted, corrected)
    return corrected.clamp(-1.0, 1.0)


def channel_shrinks(config: MADNConfig) -> list[float]:
    """The shrink (fraction of the [-1, 1] range) of each of the model's channels:
    `network.mri_shrink` for the MRI channel when set, `network.correction_shrink` otherwise."""
    net = config.network
    mri = net.correction_shrink if net.mri_shrink is None else net.mri_shrink
    return [mri if name == "mri" else net.correction_shrink for name in config.channels]


def shrink_change(
    image: torch.Tensor,
    output: torch.Tensor,
    threshold: float | torch.Tensor,
    rule: str = "soft",
) -> torch.Tensor:
    """image + shrink(output - image, t) for (N, C, H, W) tensors in [-1, 1] (step 3): changes
    of at most `threshold` t (a number, or a tensor that broadcasts, e.g. (1, C, 1, 1) per
    channel) are dropped; larger ones are shortened by t ("soft"), by t^2 / |d| ("garrote") or
    kept ("hard"), per `network.shrink_rule`."""
    change = output - image
    size = change.abs()
    kept = size > threshold
    if rule == "soft":
        shrunk = change.sign() * (size - threshold).clamp_min(0.0)
    elif rule == "garrote":
        shrunk = change * (1.0 - threshold**2 / size.clamp_min(1e-12) ** 2)
    elif rule == "hard":
        shrunk = change
    else:
        raise ValueError(f"shrink rule {rule!r}: expected soft, garrote or hard")
    return image + torch.where(kept, shrunk, torch.zeros_like(change))


def smooth_change(config: MADNConfig, image: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """image + Gauss(output - image) for (N, C, H, W) tensors: the change `output` makes to
    `image` low-passed by a Gaussian of `network.correction_smooth_mm` (std, mm)."""
    _check_spacing(config, "network.correction_smooth_mm")
    sigma_px = config.network.correction_smooth_mm / config.data.spacing_mm
    change = (output - image).float()
    return (image.float() + gaussian_filter(change, sigma_px)).to(output.dtype)


def channel_bands_mm(config: MADNConfig) -> list[float]:
    """The implant band (mm) of each of the model's channels: `network.mri_band_mm` for the MRI
    channel when set, `network.correction_band_mm` otherwise."""
    net = config.network
    mri = net.mri_band_mm if net.mri_band_mm > 0 else net.correction_band_mm
    return [mri if name == "mri" else net.correction_band_mm for name in config.channels]


def blend_channels_in_band(
    config: MADNConfig, corrected: torch.Tensor, corrupted: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """`corrected` (N, C, H, W) kept within each channel's implant band of `mask` (N, 1, H, W)
    and faded back to `corrupted` beyond (`madn_core.band`)."""
    _check_spacing(config, "network.correction_band_mm")
    distance = metal_distance(mask, config.data.spacing_mm)  # once for every channel's band
    weight = torch.cat([weight_at_distance(distance, b) for b in channel_bands_mm(config)], dim=1)
    weight = weight.to(corrected.dtype)
    return weight * corrected + (1.0 - weight) * corrupted


def _check_spacing(config: MADNConfig, setting: str) -> None:
    if config.data.spacing_mm <= 0:
        raise ValueError(
            f"{setting} needs data.spacing_mm (the model's pixel spacing), "
            "which this model does not record"
        )
