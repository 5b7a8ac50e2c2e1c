"""Typed, validated configuration of a MADN model and its training.

Every value is checked when the dataclass is built; a bad value raises `ConfigError` naming the
field (``loss.lambda_sim must be >= 0, got -1.0``). Configs round-trip through plain dicts
(`MADNConfig.to_dict` / `MADNConfig.from_dict`), which is how the sweep layer passes them, and
accept dotted overrides (`MADNConfig.with_overrides({"loss.lambda_sim": 0.3})`).

Defaults follow the MADN paper (lr 1e-5, lambda_adv 1, lambda_rec = lambda_cycle = lambda_art = 20,
lambda_sim 1, LNCC sigma 5 px) and ADN (Liao et al. 2019) for the architecture.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


@dataclass(frozen=True)
class VariantSpec:
    """What a model variant is made of (docs/model.md).

    channels: image channels in order, e.g. ("ct", "mri").
    uses_similarity: whether the multimodal similarity loss L_sim is part of the objective.
    full_cycle: whether the self-synthesis term (eq. 7) joins self-reduction in L_cycle.
    """

    channels: tuple[str, ...]
    uses_similarity: bool
    full_cycle: bool


VARIANTS: dict[str, VariantSpec] = {
    "adn-ct": VariantSpec(channels=("ct",), uses_similarity=False, full_cycle=False),
    "adn-mr": VariantSpec(channels=("mri",), uses_similarity=False, full_cycle=False),
    "multichannel": VariantSpec(channels=("ct", "mri"), uses_similarity=False, full_cycle=False),
    "madn": VariantSpec(channels=("ct", "mri"), uses_similarity=True, full_cycle=True),
}

NORMS = ("instance", "layer", "none")
PADDINGS = ("reflect", "replicate", "zero")
GAN_MODES = ("lsgan", "vanilla")
SIMILARITY_NAMES = ("lncc", "cc", "nmi")
VOID_SHAPES = ("disc", "soft")  # the void term's shapes (madn_core.voids)
DEVICES = ("auto", "cpu", "cuda")
SHRINK_RULES = ("soft", "garrote", "hard")
CT_PRIORS = ("none", "li", "nmar")  # DataConfig.ct_prior
CHANNEL_NAMES = ("ct", "mri")  # NetworkConfig.residual_channels


def _check(condition: bool, name: str, expectation: str, value: Any) -> None:
    if not condition:
        raise ConfigError(f"{name} must be {expectation}, got {value!r}")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        name,
        f"an integer >= {minimum}",
        value,
    )


def _finite_float(name: str, value: Any, minimum: float = 0.0, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    _check(ok, name, f"a finite number {'>' if strict else '>='} {minimum:g}", value)


def _channel_names(name: str, value: Any) -> list[str] | None:
    """`value` checked as null or a list of CHANNEL_NAMES, as a list (None stays None)."""
    if value is None:
        return None
    valid = isinstance(value, (list, tuple)) and all(n in CHANNEL_NAMES for n in value)
    _check(valid, name, "null or a list of ct, mri", value)
    return list(value)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    _check(value in choices, name, f"one of {', '.join(choices)}", value)


@dataclass
class NetworkConfig:
    """Layer sizes of the ADN encoders, decoders and PatchGAN discriminators.

    base_channels: width of the first encoder layer (ADN: 64); deeper layers double per down step.
    num_down: stride-2 convolutions in each encoder (= nearest-upsampling steps in each decoder).
    num_res: residual blocks at the bottleneck of each content encoder and each decoder.
    num_sides: artefact-encoder feature maps fused into the artefact decoder's last layers.
    residual: the clean decoder G_I predicts a correction that is added to the image its code was
        encoded from (zero-initialised, so an untrained G_I is the identity, i.e. No MAR); G_Ia
        stays ADN's synthesiser. ADN: false.
    residual_channels: with `residual`, the channels ("ct", "mri") G_I corrects residually; the
        others keep ADN's tanh synthesis. Channels a variant lacks are ignored, so one setting
        serves every variant (["mri"]: adn-ct is unchanged). None: every channel.
    gated: a learned gate g in (0, 1) per pixel and channel (`madn_core.networks.Gate`, from the
        input and G_I's change to it) decides where the correction applies: x̂ = g G_I + (1 - g)
        x^a. It trains only on the paired signals, with G_I's outputs detached (`loss.lambda_gate`),
        so G_I trains exactly as without it. ADN: false.
    gate_bias: the gate's initial logit (0: g = 0.5 everywhere at first).
    content_skips: content-encoder feature maps fused into the clean decoder G_I's last layers
        (U-Net-like skips that carry anatomy past the bottleneck). ADN: 0.
    correction_band_mm: `MADN.correct` applies the correction within this distance of metal and
        fades back to the input by twice it (`madn_core.band`); needs `data.spacing_mm`. Training
        is unchanged. ADN: 0 (the whole image).
    mri_band_mm: the band of the MRI channel, when it differs from the CT's: MRI artefacts of an
        implant (signal void, distortion) stay within a few centimetres of it, CT streaks cross
        the slice. 0: the MRI channel uses correction_band_mm.
    metal_fill: the CT pixels of metal are set to water before the encoders, in training and at
        inference, and put back into the output (`madn_core.correction`). ADN: false.
    correction_shrink: `MADN.correct` soft-thresholds the network's change to its input at this
        fraction of each channel's intensity range (0.1: 300 HU in a 3000 HU CT window): changes
        smaller than that, mostly the noise texture the network cannot reproduce, are not
        applied, larger ones are applied less that amount (`madn_core.correction`). Training is
        unchanged. ADN: 0 (the output as the decoder made it).
    mri_shrink: the shrink of the MRI channel, when it differs from the CT's (a fraction in
        [0, 1)): the MRI decoder's smoothing costs less than the CT's, and its small changes near
        the implant are the void it fills (docs/model.md, ablation 10). None: the MRI channel uses
        correction_shrink.
    shrink_rule: how a change above the threshold t is applied: "soft" (ADN-era wavelet
        shrinkage, sign(d) (|d| - t): every change shortened by t), "garrote" (the non-negative
        garrote, d (1 - t^2 / d^2): continuous at t like soft, but a change of several t is kept
        almost whole) or "hard" (d as it is, jumping from 0 at t). Changes of at most t are
        dropped under every rule. Default "soft".
    correction_smooth_mm: `MADN.correct` low-passes the network's change to its input with a
        Gaussian of this std (mm) before adding it back; needs `data.spacing_mm`. Measured to
        remove the streak correction with the noise (docs/model.md, ablation 6). ADN: 0.
    """

    base_channels: int = 64
    num_down: int = 2
    num_res: int = 4
    num_sides: int = 3
    encoder_norm: str = "instance"
    decoder_norm: str = "instance"
    up_norm: str = "layer"
    padding: str = "reflect"
    discriminator_channels: int = 64
    discriminator_layers: int = 2
    discriminator_norm: str = "instance"
    residual: bool = False
    residual_channels: list[str] | None = None
    gated: bool = False
    gate_bias: float = 0.0
    content_skips: int = 0
    correction_band_mm: float = 0.0
    mri_band_mm: float = 0.0
    metal_fill: bool = False
    correction_shrink: float = 0.0
    mri_shrink: float | None = None
    shrink_rule: str = "soft"
    correction_smooth_mm: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("network.base_channels", self.base_channels)
        _finite_float("network.correction_shrink", self.correction_shrink)
        _check(
            0 <= self.correction_shrink < 1,
            "network.correction_shrink",
            "a fraction in [0, 1)",
            self.correction_shrink,
        )
        if self.mri_shrink is not None:
            _finite_float("network.mri_shrink", self.mri_shrink)
            _check(
                0 <= self.mri_shrink < 1,
                "network.mri_shrink",
                "a fraction in [0, 1) or null",
                self.mri_shrink,
            )
        _choice("network.shrink_rule", self.shrink_rule, SHRINK_RULES)
        _finite_float("network.correction_smooth_mm", self.correction_smooth_mm)
        _check(
            self.correction_smooth_mm >= 0,
            "network.correction_smooth_mm",
            ">= 0",
            self.correction_smooth_mm,
        )
        _finite_float("network.correction_band_mm", self.correction_band_mm)
        _finite_float("network.mri_band_mm", self.mri_band_mm)
        _positive_int("network.num_down", self.num_down, minimum=0)
        _positive_int("network.num_res", self.num_res, minimum=0)
        _positive_int("network.num_sides", self.num_sides, minimum=0)
        max_sides = self.num_down + 1 + self.num_res
        _check(
            self.num_sides <= max_sides,
            "network.num_sides",
            f"<= num_down + 1 + num_res = {max_sides}",
            self.num_sides,
        )
        _positive_int("network.content_skips", self.content_skips, minimum=0)
        _check(
            self.content_skips <= max_sides,
            "network.content_skips",
            f"<= num_down + 1 + num_res = {max_sides}",
            self.content_skips,
        )
        _check(isinstance(self.residual, bool), "network.residual", "true or false", self.residual)
        self.residual_channels = _channel_names("network.residual_channels", self.residual_channels)
        _check(isinstance(self.gated, bool), "network.gated", "true or false", self.gated)
        bias = self.gate_bias
        finite = isinstance(bias, (int, float)) and not isinstance(bias, bool)
        _check(finite and math.isfinite(bias), "network.gate_bias", "a finite number", bias)
        _check(
            isinstance(self.metal_fill, bool),
            "network.metal_fill",
            "true or false",
            self.metal_fill,
        )
        for name in ("encoder_norm", "decoder_norm", "up_norm", "discriminator_norm"):
            _choice(f"network.{name}", getattr(self, name), NORMS)
        _choice("network.padding", self.padding, PADDINGS)
        _positive_int("network.discriminator_channels", self.discriminator_channels)
        _positive_int("network.discriminator_layers", self.discriminator_layers)

    def architecture(self) -> dict[str, Any]:
        """The settings that shape the weights: all but INFERENCE_ONLY, which act in
        `MADN.correct` only (a run may be resumed with those changed)."""
        settings = dataclasses.asdict(self)
        return {k: v for k, v in settings.items() if k not in INFERENCE_ONLY}


# NetworkConfig fields that `MADN.correct` reads and training does not (madn_core.correction)
INFERENCE_ONLY = (
    "correction_band_mm",
    "mri_band_mm",
    "correction_shrink",
    "mri_shrink",
    "shrink_rule",
    "correction_smooth_mm",
)

LAMBDAS = (
    "lambda_adv",
    "lambda_rec",
    "lambda_cycle",
    "lambda_art",
    "lambda_idt",
    "lambda_gate",
    "lambda_gate_adv",
    "lambda_sim",
    "lambda_void",
)


@dataclass
class LossConfig:
    """Weights and choices of the MADN objective (paper eqs. 1-8).

    gan_mode: "lsgan" (least squares, default) or "vanilla" (BCE with logits).
    lambda_adv: weight of each adversarial term (clean and corrupted branch).
    lambda_rec: weight of the reconstruction term |x̂a - xa|_1 + |ŷ - y|_1.
    lambda_cycle: weight of L_cycle: self-reduction, plus self-synthesis when full_cycle is on.
    lambda_art: weight of the artefact-consistency term |(xa - x̂) - (ŷa - y)|_1.
    art_channels: the channels ("ct", "mri") that term compares; None: all. Where the artefact
        branch draws no artefact (ŷa = y, as for the MRI void at CPU budgets), the term asks
        x̂ = xa: it holds that channel at its input (docs/model.md, ablations 9 and 19).
    lambda_idt: weight of the identity term |G_I(E_Ia(y)) - y|_1 (CycleGAN's identity mapping
        loss: the correction path leaves a clean image as it is); 0 (off) in ADN.
    lambda_gate: weight of the gate's term (with `network.gated`): |g r + (1 - g) b - y|_1 over
        the synthetic pair (b = ŷa, r = G_I(E_Ia(ŷa))) and the clean pair (b = y, r = G_I(E_Ia(y))),
        r detached, so only the gate learns from it: open where the correction helps, shut where
        there is nothing to correct.
    lambda_gate_adv: weight of the gate's adversarial term, D_I on g x̂ + (1 - g) xa with x̂
        detached: the gate opens where the input looks corrupted to D_I and shuts where G_I's
        output does (blur), on the real corrupted batch.
    full_cycle: add self-synthesis |G_Ia(E_I(x̂), a) - xa|_1 (eq. 7); None: the variant's default.
    similarity: "lncc", "cc" or "nmi"; used only by variants with a similarity loss.
    lambda_sim: weight of L_sim = 1 - mean |S(x̂_CT, x̂_MRI)|.
    lambda_void: weight of the void-inpainting term |G_I(E_Ia(v(y))) - y|_1 on the MRI channel
        inside the void, v(y) the clean batch with its MRI blanked inside one random disc per
        image (`madn_core.voids`); variants with an MRI channel only; 0 (off) in ADN.
    void_radius_px: the largest radius of those discs, in pixels (the smallest is a quarter).
    void_shape: "disc" (the MRI set to -1 inside a hard-edged disc) or "soft" (the signal fading
        to a Rayleigh noise floor towards a core, as real voids do; `madn_core.voids`).
    sigma: standard deviation of the LNCC Gaussian window, in pixels.
    nmi_bins: number of Parzen histogram bins for NMI.
    """

    gan_mode: str = "lsgan"
    lambda_adv: float = 1.0
    lambda_rec: float = 20.0
    lambda_cycle: float = 20.0
    lambda_art: float = 20.0
    art_channels: list[str] | None = None
    lambda_idt: float = 0.0
    lambda_gate: float = 1.0
    lambda_gate_adv: float = 1.0
    full_cycle: bool | None = None
    similarity: str = "lncc"
    lambda_sim: float = 1.0
    lambda_void: float = 0.0
    void_radius_px: float = 12.0
    void_shape: str = "disc"
    sigma: float = 5.0
    nmi_bins: int = 32

    def __post_init__(self) -> None:
        _choice("loss.gan_mode", self.gan_mode, GAN_MODES)
        for name in LAMBDAS:
            _finite_float(f"loss.{name}", getattr(self, name))
        _check(
            self.full_cycle is None or isinstance(self.full_cycle, bool),
            "loss.full_cycle",
            "true, false or null",
            self.full_cycle,
        )
        _choice("loss.similarity", self.similarity, SIMILARITY_NAMES)
        _finite_float("loss.sigma", self.sigma, strict=True)
        _finite_float("loss.void_radius_px", self.void_radius_px, strict=True)
        _choice("loss.void_shape", self.void_shape, VOID_SHAPES)
        self.art_channels = _channel_names("loss.art_channels", self.art_channels)
        _positive_int("loss.nmi_bins", self.nmi_bins, minimum=4)


@dataclass
class OptimConfig:
    """Adam settings: one optimiser for all encoders/decoders, one per discriminator."""

    lr: float = 1e-5
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        _finite_float("optim.lr", self.lr, strict=True)
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            _finite_float(f"optim.{name}", value)
            _check(value < 1.0, f"optim.{name}", "< 1", value)
        _finite_float("optim.weight_decay", self.weight_decay)


@dataclass
class TrainConfig:
    """The training loop's settings.

    amp: bf16 autocast for the networks (similarity is always computed in float32).
    channels_last: NHWC memory format (helps convolutions on GPUs).
    device: "auto" (CUDA when available), "cpu" or "cuda".
    ema_decay: decay of the generator weights' exponential moving average, which validation and
        export use (madn_core.ema); 0 turns it off.
    patch: side in pixels of the random square crops trained on (the networks are fully
        convolutional, so they still apply to whole slices); 0 trains on whole slices.
    patch_focus: with a patch, the fraction of artefact-affected slices cropped around their
        implant, each paired clean slice cropped at the same place (0: uniform crops; the data
        loader's `pipelines.data.patches` says why).
    val_every: validate (and so consider for best.ckpt) every N-th epoch and after the last
        one; 1 validates every epoch. Validation is a third of a CPU epoch at the quality
        benchmark's size (docs/benchmarks.md).
    """

    epochs: int = 50
    batch_size: int = 4
    seed: int = 0
    amp: bool = False
    channels_last: bool = False
    device: str = "auto"
    ema_decay: float = 0.0
    patch: int = 0
    patch_focus: float = 0.0
    val_every: int = 1

    def __post_init__(self) -> None:
        _positive_int("train.patch", self.patch, minimum=0)
        _positive_int("train.val_every", self.val_every)
        _positive_int("train.epochs", self.epochs)
        _finite_float("train.ema_decay", self.ema_decay)
        _check(self.ema_decay < 1.0, "train.ema_decay", "< 1", self.ema_decay)
        _finite_float("train.patch_focus", self.patch_focus)
        _check(self.patch_focus <= 1.0, "train.patch_focus", "<= 1", self.patch_focus)
        _positive_int("train.batch_size", self.batch_size)
        _positive_int("train.seed", self.seed, minimum=0)
        _check(isinstance(self.amp, bool), "train.amp", "true or false", self.amp)
        _check(
            isinstance(self.channels_last, bool),
            "train.channels_last",
            "true or false",
            self.channels_last,
        )
        _choice("train.device", self.device, DEVICES)


@dataclass
class DataConfig:
    """What the model's input pixels mean, recorded from the training data so that inference
    reproduces it (checkpoints and registered models carry it).

    spacing_mm: in-plane pixel spacing the model was trained at, in mm; 0: unknown (checkpoints
        from before it was recorded: inference then fits the field of view into image_size).
    ct_window_hu: (min, max) HU mapped linearly to [-1, 1].
    mri_percentiles: (low, high) percentiles of each MRI volume mapped to -1 and +1.
    ct_prior: classical MAR applied to the CT's slices with metal before the network sees them,
        in training data and at inference alike: "none", "li" or "nmar" (docs/model.md,
        ablation 15).
    """

    spacing_mm: float = 0.0
    ct_window_hu: tuple[float, float] = (-1000.0, 2000.0)
    mri_percentiles: tuple[float, float] = (0.5, 99.5)
    ct_prior: str = "none"

    def __post_init__(self) -> None:
        _finite_float("data.spacing_mm", self.spacing_mm)
        _choice("data.ct_prior", self.ct_prior, CT_PRIORS)
        for name in ("ct_window_hu", "mri_percentiles"):
            value = tuple(getattr(self, name))
            _check(
                len(value) == 2 and all(isinstance(v, (int, float)) for v in value),
                f"data.{name}",
                "two numbers (low, high)",
                value,
            )
            _check(value[0] < value[1], f"data.{name}", "(low, high) with low < high", value)
            setattr(self, name, (float(value[0]), float(value[1])))


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "network": NetworkConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


@dataclass
class MADNConfig:
    """Everything that defines one model and its training.

    variant: one of VARIANTS ("adn-ct", "adn-mr", "multichannel", "madn").
    image_size: side of the square 2D slices in pixels; must be divisible by 2**num_down.
    """

    variant: str = "madn"
    image_size: int = 256
    network: NetworkConfig = field(default_factory=NetworkConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        _choice("variant", self.variant, tuple(VARIANTS))
        _positive_int("image_size", self.image_size, minimum=8)
        factor = 2**self.network.num_down
        _check(
            self.image_size % factor == 0,
            "image_size",
            f"divisible by 2**network.num_down = {factor}",
            self.image_size,
        )
        patch = self.train.patch
        _check(
            patch == 0 or (patch % factor == 0 and 16 <= patch <= self.image_size),
            "train.patch",
            f"0 or a multiple of {factor} in 16..image_size={self.image_size}",
            patch,
        )

    @property
    def spec(self) -> VariantSpec:
        return VARIANTS[self.variant]

    @property
    def channels(self) -> tuple[str, ...]:
        """Image channels the model reads and writes, in order (e.g. ("ct", "mri"))."""
        return self.spec.channels

    @property
    def in_channels(self) -> int:
        return len(self.spec.channels)

    @property
    def residual_mask(self) -> tuple[bool, ...]:
        """Per channel of `channels`, whether G_I corrects it residually (`network.residual`
        and `network.residual_channels`); all False for ADN's decoder."""
        net = self.network
        chosen = net.residual_channels
        return tuple(net.residual and (chosen is None or c in chosen) for c in self.channels)

    @property
    def art_mask(self) -> tuple[bool, ...]:
        """Per channel of `channels`, whether the artefact-consistency term compares it
        (`loss.art_channels`; None: every channel)."""
        chosen = self.loss.art_channels
        return tuple(chosen is None or c in chosen for c in self.channels)

    @property
    def uses_similarity(self) -> bool:
        return self.spec.uses_similarity

    @property
    def full_cycle(self) -> bool:
        """Whether L_cycle includes self-synthesis: the loss setting, else the variant's default."""
        if self.loss.full_cycle is None:
            return self.spec.full_cycle
        return self.loss.full_cycle

    def architecture(self) -> dict[str, Any]:
        """What shapes the weights: the variant, `NetworkConfig.architecture` and the residual
        channels as this variant has them (residual on a channel it lacks changes nothing)."""
        network = self.network.architecture()
        network.pop("residual")
        network.pop("residual_channels")
        return {"variant": self.variant, "network": network, "residual": self.residual_mask}

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (JSON/YAML-safe) that `from_dict` turns back into this config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MADNConfig:
        """Build from a nested dict; missing keys take defaults, unknown keys raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}; expected one of {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            section = _SECTIONS.get(key)
            if section is None:
                kwargs[key] = value
                continue
            if isinstance(value, section):
                kwargs[key] = value
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key} must be a mapping, got {type(value).__name__}")
            names = {f.name for f in dataclasses.fields(section)}
            bad = sorted(set(value) - names)
            if bad:
                raise ConfigError(
                    f"unknown config key '{key}.{bad[0]}'; expected one of {sorted(names)}"
                )
            kwargs[key] = section(**value)
        return cls(**kwargs)

    def with_overrides(self, overrides: Mapping[str, Any]) -> MADNConfig:
        """A copy with dotted-key overrides applied, e.g. {"loss.lambda_sim": 0.3}."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            parts = dotted.split(".")
            target = data
            for part in parts[:-1]:
                if not isinstance(target.get(part), dict):
                    raise ConfigError(f"unknown config key {dotted!r}")
                target = target[part]
            if parts[-1] not in target:
                raise ConfigError(f"unknown config key {dotted!r}")
            target[parts[-1]] = value
        return MADNConfig.from_dict(data)
