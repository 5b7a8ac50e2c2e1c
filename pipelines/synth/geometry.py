"""CT acquisition geometries: parallel beam and fan beam with an arc detector (torch).

Both project (B, S, S) attenuation maps (per cm) on a square grid of `size` pixels of
`pixel_cm` to line integrals, and reconstruct them by filtered back-projection (FBP) with the
Ram-Lak kernel (Kak & Slaney, Principles of Computerized Tomographic Imaging, ch. 3). Rays are
sampled every pixel along their length with bilinear interpolation. Everything runs on any
torch device.

- `ParallelBeamCT`: views over 180 degrees, detector bins of one pixel.
- `FanBeamCT`: the geometry of the CNNMAR/ADN simulation scaled to the slice: a point source
  `source_px` pixels from the isocentre (1075 by default), `views` over 360 degrees (320), and
  an equiangular (arc) detector whose bins are one pixel wide at the isocentre. Reconstruction
  is the equiangular fan-beam FBP (Kak & Slaney eq. 3.3.64-3.3.67): projections weighted by
  D cos(gamma), filtered with (gamma / sin gamma)^2 / 2 times the ramp kernel, back-projected
  with 1/L^2 weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def ramp_kernel(bins: int, spacing: float, device: torch.device) -> tuple[torch.Tensor, int]:
    """Ram-Lak spatial kernel h(n * spacing) (Kak & Slaney eq. 3.61) zero padded to a power of
    two >= 2 * bins: returns (kernel (L,), L), index n at position n mod L."""
    length = 1 << (2 * bins - 1).bit_length()
    n = torch.arange(length, device=device)
    n = torch.where(n > length // 2, n - length, n).double()
    kernel = torch.zeros(length, device=device, dtype=torch.float64)
    kernel[n == 0] = 0.25 / spacing**2
    odd = n.remainder(2) == 1
    kernel[odd] = -1.0 / (math.pi * n[odd] * spacing) ** 2
    return kernel, length


def filter_rows(sinogram: torch.Tensor, kernel_fft: torch.Tensor, length: int) -> torch.Tensor:
    """Convolve every detector row (last axis) with a kernel given in rFFT space."""
    bins = sinogram.shape[-1]
    spectrum = torch.fft.rfft(sinogram, n=length) * kernel_fft
    return torch.fft.irfft(spectrum, n=length)[..., :bins]


def interpolate_rows(rows: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of rows (B, V, N) at fractional bin positions (V, P) -> (B, V, P);
    positions outside [0, N - 1] read zero."""
    bins = rows.shape[-1]
    lower = position.floor().clamp(0, bins - 2)
    weight = (position - lower).clamp(0, 1)
    inside = ((position >= 0) & (position <= bins - 1)).to(rows.dtype)
    index = lower.long().unsqueeze(0).expand(rows.shape[0], -1, -1)
    left = rows.gather(2, index)
    right = rows.gather(2, index + 1)
    return ((1 - weight) * left + weight * right) * inside


def views_per_call(elements_per_view: int, budget: int) -> int:
    """Views processed together so that one call's temporaries stay near `budget` elements
    (large temporaries cost more in page faults than they save in calls on a CPU)."""
    return max(1, min(64, budget // max(elements_per_view, 1)))


class _Geometry:
    """Shared parts: the image grid and ray sampling with grid_sample."""

    def __init__(self, size: int, pixel_cm: float, device: str | torch.device) -> None:
        self.size = size
        self.pixel_cm = pixel_cm
        self.device = torch.device(device)
        centred = torch.arange(size, device=self.device, dtype=torch.float32) + 0.5 - size / 2
        yy, xx = torch.meshgrid(centred, centred, indexing="ij")
        self.pixel_x, self.pixel_y = xx.reshape(1, -1), yy.reshape(1, -1)  # pixels from centre

    def _integrate(self, images: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
        """Sum (B, S, S) maps at sample points (V, R, N) in pixels from the centre -> (B, V, N)."""
        half = self.size / 2
        grid = torch.stack([gx / half, gy / half], dim=-1)
        sampled = F.grid_sample(
            images.unsqueeze(0).expand(grid.shape[0], -1, -1, -1),
            grid,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        return sampled.sum(dim=2).transpose(0, 1)


class ParallelBeamCT(_Geometry):
    """Parallel beam: `views` over 180 degrees (ceil(pi/2 * size) by default) and
    ceil(sqrt(2) * size) detector bins of one pixel, centred."""

    def __init__(
        self,
        size: int,
        pixel_cm: float,
        views: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(size, pixel_cm, device)
        self.views = views or math.ceil(math.pi / 2 * size)
        self.bins = math.ceil(size * math.sqrt(2)) // 2 * 2 + 1
        self.angles = torch.arange(self.views, device=self.device) * math.pi / self.views
        self.offsets = torch.arange(self.bins, device=self.device) - (self.bins - 1) / 2.0
        kernel, self._length = ramp_kernel(self.bins, 1.0, self.device)
        self._kernel_fft = torch.fft.rfft(kernel).to(torch.complex64)

    def project(self, images: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Line integrals: (B, S, S) maps (per cm) -> (B, views, bins), unitless."""
        out = torch.empty(images.shape[0], self.views, self.bins, device=images.device)
        chunk = chunk or views_per_call(images.shape[0] * self.bins * self.bins, 8 << 20)
        t = self.offsets.view(1, 1, -1)  # detector position, pixels
        r = self.offsets.view(1, -1, 1)  # position along the ray, pixels
        for start in range(0, self.views, chunk):
            theta = self.angles[start : start + chunk]
            cos, sin = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
            gx = (t * cos - r * sin).expand(-1, self.bins, -1)
            gy = (t * sin + r * cos).expand(-1, self.bins, -1)
            out[:, start : start + len(theta)] = self._integrate(images, gx, gy)
        return out * self.pixel_cm

    def fbp(self, sinogram: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Filtered back-projection: (B, views, bins) line integrals -> (B, S, S) per cm."""
        filtered = filter_rows(sinogram, self._kernel_fft, self._length) / self.pixel_cm
        image = torch.zeros(sinogram.shape[0], self.size * self.size, device=sinogram.device)
        chunk = chunk or views_per_call(sinogram.shape[0] * self.size * self.size, 2 << 20)
        half = (self.bins - 1) / 2
        for start in range(0, self.views, chunk):
            theta = self.angles[start : start + chunk].view(-1, 1)
            u = self.pixel_x * theta.cos() + self.pixel_y * theta.sin() + half
            image += interpolate_rows(filtered[:, start : start + len(theta)], u).sum(dim=1)
        return (image * math.pi / self.views).view(-1, self.size, self.size)


class FanBeamCT(_Geometry):
    """Fan beam, arc detector: source `source_px` pixels from the isocentre, `views` over 360
    degrees, equiangular bins of 1 / source_px radians (one pixel at the isocentre) covering the
    slice's circumscribed circle."""

    def __init__(
        self,
        size: int,
        pixel_cm: float,
        views: int = 320,
        source_px: float = 1075.0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(size, pixel_cm, device)
        radius = size / math.sqrt(2) + 1.0
        if source_px <= radius * 1.05:
            raise ValueError(
                f"fan beam: the source ({source_px:g} px from the isocentre) must lie outside "
                f"the slice's circumscribed circle ({radius:.0f} px)"
            )
        self.views, self.source_px = views, float(source_px)
        self.spacing = 1.0 / self.source_px  # detector angle per bin, radians
        half_fan = math.asin(radius / self.source_px)
        self.bins = 2 * math.ceil(half_fan / self.spacing) + 1
        self.angles = torch.arange(self.views, device=self.device) * 2 * math.pi / self.views
        self.gammas = (
            torch.arange(self.bins, device=self.device, dtype=torch.float32) - (self.bins - 1) / 2
        ) * self.spacing
        self.samples = torch.arange(
            self.source_px - radius, self.source_px + radius, 1.0, device=self.device
        )
        kernel, self._length = ramp_kernel(self.bins, self.spacing, self.device)
        n = torch.arange(self._length, device=self.device)
        gamma = torch.where(n > self._length // 2, n - self._length, n).double() * self.spacing
        ratio = torch.where(gamma == 0, torch.ones_like(gamma), gamma / torch.sin(gamma))
        self._kernel_fft = torch.fft.rfft(0.5 * ratio**2 * kernel * self.spacing)
        self._kernel_fft = self._kernel_fft.to(torch.complex64)

    def project(self, images: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Line integrals: (B, S, S) maps (per cm) -> (B, views, bins), unitless."""
        out = torch.empty(images.shape[0], self.views, self.bins, device=images.device)
        chunk = chunk or views_per_call(images.shape[0] * self.bins * self.bins, 8 << 20)
        r = self.samples.view(1, -1, 1)
        for start in range(0, self.views, chunk):
            beta = self.angles[start : start + chunk].view(-1, 1, 1)
            sx, sy = self.source_px * beta.cos(), self.source_px * beta.sin()
            direction = beta + math.pi + self.gammas.view(1, 1, -1)  # ray angle, towards the centre
            gx = sx + r * direction.cos()
            gy = sy + r * direction.sin()
            out[:, start : start + len(beta)] = self._integrate(images, gx, gy)
        return out * self.pixel_cm

    def fbp(self, sinogram: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Equiangular fan-beam FBP: (B, views, bins) line integrals -> (B, S, S) per cm."""
        weighted = sinogram * (self.source_px * self.gammas.cos())
        filtered = filter_rows(weighted, self._kernel_fft, self._length) / self.pixel_cm
        image = torch.zeros(sinogram.shape[0], self.size * self.size, device=sinogram.device)
        chunk = chunk or views_per_call(sinogram.shape[0] * self.size * self.size, 2 << 20)
        half = (self.bins - 1) / 2
        for start in range(0, self.views, chunk):
            beta = self.angles[start : start + chunk].view(-1, 1)
            dx = self.pixel_x - self.source_px * beta.cos()
            dy = self.pixel_y - self.source_px * beta.sin()
            gamma = torch.atan2(dy, dx) - (beta + math.pi)
            gamma = torch.remainder(gamma + math.pi, 2 * math.pi) - math.pi
            values = interpolate_rows(
                filtered[:, start : start + len(beta)], gamma / self.spacing + half
            )
            image += (values / (dx**2 + dy**2)).sum(dim=1)
        return (image * 2 * math.pi / self.views).view(-1, self.size, self.size)
