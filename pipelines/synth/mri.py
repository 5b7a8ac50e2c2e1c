"""T1-weighted MRI with susceptibility artefacts from a metal implant (numpy).

1. Field: dB/B0 = IFFT(D(k) FFT(chi - chi_water)), dipole kernel D = 1/3 - kz^2/|k|^2 with B0
   along z (through-plane for axial slices), on a zero-padded grid with physical voxel sizes.
2. Frequency offset df = gamma_bar B0 dB/B0 (gamma_bar = 42.58 MHz/T) and in-plane displacement
   along the readout axis (x, columns) of df / bandwidth-per-pixel pixels.
3. Each source voxel's signal is moved to x + dx(x) by splatting sub-voxel samples with linear
   weights: converging displacements pile signal up, diverging ones leave dark bands, which is
   the Jacobian |1 + d(dx)/dx| intensity change without dividing by it.
4. Intravoxel dephasing: the signal is multiplied by |sinc(df spread across the voxel x tau)|,
   tau an effective residual dephasing time (spin echo refocuses most of it); the implant itself
   gives no signal. Through-plane (slice-selection) distortion is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAMMA_BAR_MHZ_PER_T = 42.58
CHI_WATER_PPM = -9.05


@dataclass
class MRIProtocol:
    """b0_tesla: field strength; bandwidth_hz_per_px: readout bandwidth per pixel (MARS protocols
    use 400-900); dephasing_ms: effective residual intravoxel dephasing time; noise: Rician noise
    std relative to fat intensity 1; bias: amplitude of the smooth multiplicative bias field;
    contrast: "t1" (T1-weighted spin echo, fat bright) or "t2" (T2/PD-like, fluid bright)."""

    b0_tesla: float = 1.5
    bandwidth_hz_per_px: float = 400.0
    dephasing_ms: float = 1.0
    noise: float = 0.015
    bias: float = 0.15
    contrast: str = "t1"

    def __post_init__(self) -> None:
        if self.contrast not in ("t1", "t2"):
            raise ValueError(f"--mri-contrast must be t1 or t2, got {self.contrast!r}")


def field_offset_ppm(chi_ppm: np.ndarray, voxel_mm: tuple[float, float, float]) -> np.ndarray:
    """Relative field perturbation dB/B0 in ppm for a (K, S, S) susceptibility map in ppm (SI).

    voxel_mm: (z, y, x) voxel sizes. B0 along z. The volume is zero padded (x2 in z, x1.5
    in-plane) against wrap-around, and the k = 0 term is set to zero."""
    delta = chi_ppm.astype(np.float64) - CHI_WATER_PPM
    k_z, k_y, k_x = delta.shape
    shape = (2 * k_z, k_y + k_y // 2, k_x + k_x // 2)
    padded = np.zeros(shape)
    padded[:k_z, :k_y, :k_x] = delta
    frequencies = [np.fft.fftfreq(n, d=d) for n, d in zip(shape, voxel_mm, strict=True)]
    fz, fy, fx = np.meshgrid(*frequencies, indexing="ij")
    k2 = fz**2 + fy**2 + fx**2
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(k2 > 0, 1.0 / 3.0 - fz**2 / k2, 0.0)
    field = np.fft.ifftn(np.fft.fftn(padded) * kernel).real
    return field[:k_z, :k_y, :k_x]


def frequency_offset_hz(field_ppm: np.ndarray, b0_tesla: float) -> np.ndarray:
    """df = gamma_bar * B0 * (dB/B0): Hz for a ppm field (1 ppm = 63.9 Hz at 1.5 T)."""
    return GAMMA_BAR_MHZ_PER_T * b0_tesla * field_ppm


def shift_along_readout(image: np.ndarray, shift_px: np.ndarray, oversample: int = 4) -> np.ndarray:
    """Move every voxel's signal along the last axis by `shift_px` (same shape as image).

    Each voxel is split into `oversample` sub-samples whose shift is interpolated linearly
    between voxel centres; each deposits its share at its new position with linear weights.
    Signal pushed outside the field of view is lost."""
    *lead, width = image.shape
    rows = int(np.prod(lead))
    values = image.reshape(rows, width)
    shifts = shift_px.reshape(rows, width)
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5  # sub-sample offsets within a voxel
    position = np.arange(width)[:, None] + sub[None, :]  # (width, oversample)
    base = np.clip(np.floor(position).astype(int), 0, width - 2)
    frac = position - base
    shift = shifts[:, base] * (1 - frac) + shifts[:, base + 1] * frac  # (rows, width, oversample)
    target = position[None] + shift
    left = np.floor(target).astype(np.int64)
    weight_right = target - left
    share = np.repeat(values[:, :, None] / oversample, oversample, axis=2)
    out = np.zeros(rows * width)
    row_offset = (np.arange(rows) * width)[:, None, None]
    for index, weight in ((left, 1.0 - weight_right), (left + 1, weight_right)):
        inside = (index >= 0) & (index < width)
        out += np.bincount(
            (row_offset + index)[inside], (share * weight)[inside], minlength=out.size
        )
    return out.reshape(image.shape)


def dephasing(df_hz: np.ndarray, tau_ms: float) -> np.ndarray:
    """|sinc(spread x tau)| signal fraction, spread = |grad df| across one voxel (Hz)."""
    gradients = np.gradient(df_hz)
    spread = np.sqrt(sum(g**2 for g in gradients))
    return np.abs(np.sinc(spread * tau_ms * 1e-3))


def susceptibility_artefact(
    signal: np.ndarray,
    chi_ppm: np.ndarray,
    metal_mask: np.ndarray,
    voxel_mm: tuple[float, float, float],
    protocol: MRIProtocol,
) -> tuple[np.ndarray, np.ndarray]:
    """(distorted signal, displacement in pixels) for a noise-free (K, S, S) T1 signal."""
    df = frequency_offset_hz(field_offset_ppm(chi_ppm, voxel_mm), protocol.b0_tesla)
    shift = df / protocol.bandwidth_hz_per_px
    source = np.where(metal_mask, 0.0, signal) * dephasing(df, protocol.dephasing_ms)
    return shift_along_readout(source, shift), shift


def smooth_bias(
    shape: tuple[int, int, int], rng: np.random.Generator, amplitude: float
) -> np.ndarray:
    """A smooth multiplicative bias field 1 + amplitude * (low-order random polynomial)."""
    k, s, _ = shape
    z = np.linspace(-1, 1, k)[:, None, None]
    y = np.linspace(-1, 1, s)[None, :, None]
    x = np.linspace(-1, 1, s)[None, None, :]
    c = rng.uniform(-1, 1, size=5)
    field = c[0] * x + c[1] * y + 0.5 * c[2] * z + 0.5 * c[3] * x * y + 0.5 * c[4] * (x**2 - y**2)
    return 1.0 + amplitude * field / 2.0


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of std `sigma` per channel."""
    real = signal + rng.normal(0.0, sigma, signal.shape)
    imaginary = rng.normal(0.0, sigma, signal.shape)
    return np.sqrt(real**2 + imaginary**2)
