"""CT-to-MRI registration with SimpleITK: rigid, then B-spline free-form deformation.

The paper's protocol (rigid followed by FFD, Rueckert et al. 1999) with Mattes mutual
information, which suits the CT/MRI intensity relationship. The returned transform maps points
of the fixed (MRI) space to the moving (CT) space, as `sitk.Resample` expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pipelines.io.lazy_module import LazyModule

sitk = LazyModule("SimpleITK", "registration")


RegistrationMode = Literal["none", "rigid", "bspline"]
MODES: tuple[str, ...] = ("none", "rigid", "bspline")


@dataclass(frozen=True)
class RegistrationConfig:
    """mode: none | rigid | bspline (rigid first); bins: Mattes histogram bins; sampling:
    fraction of voxels sampled per iteration (seeded); mesh_mm: B-spline control-point spacing
    of the B-spline stage; mesh_refine: a second B-spline stage follows at half that spacing
    (mesh_mm / 2, finest level), so large deformations are found coarse and local ones fine;
    iterations: per resolution level (rigid, bspline); ct_window: HU clip applied to the CT
    before estimating (metal would otherwise dominate the metric); grid_mm: in-plane spacing the
    transform is estimated at: finer images are first block-averaged to about it (0: native), so
    the pyramid starts equally coarse at any resolution. The transform is physical and applies
    to the full-resolution images."""

    mode: RegistrationMode = "rigid"
    bins: int = 32
    sampling: float = 0.1
    mesh_mm: float = 60.0
    rigid_iterations: int = 100
    bspline_iterations: int = 30
    ct_window: tuple[float, float] = (-1000.0, 2000.0)
    seed: int = 0
    grid_mm: float = 0.0
    mesh_refine: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"registration mode must be one of {', '.join(MODES)}, got {self.mode!r}"
            )
        if not 0.0 < self.sampling <= 1.0:
            raise ValueError(f"registration sampling must be in (0, 1], got {self.sampling}")
        if not (self.grid_mm >= 0.0 and math.isfinite(self.grid_mm)):
            raise ValueError(f"registration grid_mm must be >= 0 mm, got {self.grid_mm}")


def estimation_grid(image: sitk.Image, grid_mm: float) -> sitk.Image:
    """`image` block-averaged in-plane (x, y) by the whole factor that brings its spacing closest
    to `grid_mm` from below; z and the physical extent are kept. Unchanged when the spacing is
    already at least `grid_mm`, or `grid_mm` is 0."""
    if grid_mm <= 0.0:
        return image
    factors = [max(1, int(grid_mm / s + 1e-6)) for s in image.GetSpacing()[:2]]
    if factors == [1, 1]:
        return image
    return sitk.BinShrink(image, [*factors, *[1] * (image.GetDimension() - 2)])


def _levels(image: sitk.Image, factors: tuple[int, ...]) -> tuple[list[int], list[float]]:
    """Pyramid levels whose shrunken image keeps at least 8 voxels along every axis (thin
    volumes would otherwise collapse to one or two slices and let the slice axis drift)."""
    usable = [f for f in factors if min(image.GetSize()) // f >= 8] or [1]
    return usable, [float(f // 2) for f in usable]


def _method(
    config: RegistrationConfig, fixed: sitk.Image, factors: tuple[int, ...]
) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=config.bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(config.sampling, config.seed)
    method.SetInterpolator(sitk.sitkLinear)
    shrink, smoothing = _levels(fixed, factors)
    method.SetShrinkFactorsPerLevel(shrink)
    method.SetSmoothingSigmasPerLevel(smoothing)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method


def _bspline_optimizer(method: sitk.ImageRegistrationMethod, config: RegistrationConfig) -> None:
    """LBFGSB with `config.bspline_iterations` iterations, for a B-spline stage."""
    method.SetOptimizerAsLBFGSB(
        gradientConvergenceTolerance=1e-5,
        numberOfIterations=config.bspline_iterations,
        maximumNumberOfCorrections=5,
        maximumNumberOfFunctionEvaluations=4 * config.bspline_iterations,
        costFunctionConvergenceFactor=1e7,
    )


def register(
    fixed: sitk.Image, moving: sitk.Image, config: RegistrationConfig, moving_is_ct: bool = True
) -> sitk.Transform:
    """Estimate the transform from `fixed` (e.g. MRI) space to `moving` (e.g. CT) space."""
    identity = sitk.Transform(3, sitk.sitkIdentity)
    if config.mode == "none":
        return identity
    fixed_f = estimation_grid(sitk.Cast(fixed, sitk.sitkFloat32), config.grid_mm)
    moving_f = sitk.Cast(moving, sitk.sitkFloat32)
    if moving_is_ct:
        moving_f = sitk.Clamp(moving_f, sitk.sitkFloat32, *config.ct_window)
    moving_f = estimation_grid(moving_f, config.grid_mm)

    initial = sitk.CenteredTransformInitializer(
        fixed_f, moving_f, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    rigid = _method(config, fixed_f, (4, 2, 1))
    rigid.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0,
        minStep=1e-3,
        numberOfIterations=config.rigid_iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-6,
    )
    rigid.SetOptimizerScalesFromPhysicalShift()
    rigid.SetInitialTransform(initial, inPlace=False)
    rigid_transform = rigid.Execute(fixed_f, moving_f)
    if config.mode == "rigid":
        return rigid_transform

    physical = [sz * sp for sz, sp in zip(fixed.GetSize(), fixed.GetSpacing(), strict=True)]
    mesh = [max(1, round(extent / config.mesh_mm)) for extent in physical]
    bspline = sitk.BSplineTransformInitializer(fixed_f, mesh, order=3)
    deformable = _method(config, fixed_f, (2, 1))
    _bspline_optimizer(deformable, config)
    deformable.SetMovingInitialTransform(rigid_transform)
    deformable.SetInitialTransform(bspline, inPlace=True)
    deformable.Execute(fixed_f, moving_f)
    composite = sitk.CompositeTransform(3)
    composite.AddTransform(rigid_transform)
    composite.AddTransform(bspline)
    if config.mesh_refine:
        composite.AddTransform(_refine(config, fixed_f, moving_f, composite, physical))
    return composite


def _refine(
    config: RegistrationConfig,
    fixed: sitk.Image,
    moving: sitk.Image,
    found: sitk.Transform,
    extent_mm: list[float],
) -> sitk.Transform:
    """A second B-spline stage at half the control-point spacing, on the finest level only:
    `fixed` registered to `moving` warped by the transform `found` so far, so that the result
    composes after it (found(stage(x))). A cascade, because SimpleITK's per-level mesh
    refinement does not work with LBFGSB and a B-spline cannot be a moving initial transform."""
    warped = sitk.Resample(moving, fixed, found, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    mesh = [max(1, round(2 * extent / config.mesh_mm)) for extent in extent_mm]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    stage = _method(config, fixed, (1,))
    _bspline_optimizer(stage, config)
    stage.SetInitialTransform(bspline, inPlace=True)
    stage.Execute(fixed, warped)
    return bspline


def align_mri_to_ct(ct: sitk.Image, mri: sitk.Image, config: RegistrationConfig) -> sitk.Image:
    """The MRI registered to the CT (`config.mode`: none, rigid or bspline) and resampled onto
    the CT's grid (linear, 0 outside), for models that take CT and MRI together. The CT is
    clipped to `config.ct_window` while estimating, so metal does not dominate the metric."""
    fixed = sitk.Clamp(sitk.Cast(ct, sitk.sitkFloat32), sitk.sitkFloat32, *config.ct_window)
    transform = register(fixed, mri, config, moving_is_ct=False)
    return sitk.Resample(
        sitk.Cast(mri, sitk.sitkFloat32), ct, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32
    )
