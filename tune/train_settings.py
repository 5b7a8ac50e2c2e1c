"""`madn train` settings (flag names, as in a --config file) and the model config they build;
shared by `madn train` and each sweep trial."""

from __future__ import annotations

from typing import Any

from madn_core.config import MADNConfig

# flag name (underscored, as in a --config file) -> dotted MADNConfig key
CONFIG_KEYS = {
    "similarity": "loss.similarity",
    "lambda_sim": "loss.lambda_sim",
    "full_cycle": "loss.full_cycle",
    "sigma": "loss.sigma",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "train.device",
    "amp": "train.amp",
    "lr": "optim.lr",
    "base_channels": "network.base_channels",
    "num_res": "network.num_res",
    "residual": "network.residual",
    "residual_channels": "network.residual_channels",
    "patch": "train.patch",
    "patch_focus": "train.patch_focus",
    "ema_decay": "train.ema_decay",
    "val_every": "train.val_every",
}


# the MRI band of the quality recipe (mm), chosen on the validation split for each MRI decoder:
# ADN's tanh synthesis blurs what it redraws, so only 10 mm around the metal (ablation 8); a
# residual decoder's change is the void it lightens, best kept to 30 mm (ablation 18)
SYNTHESISED_MRI_BAND_MM = 10.0
RESIDUAL_MRI_BAND_MM = 30.0

# named starting points under `model:` and the flags (docs/model.md has the measurements):
# "quality": the recipe `make quality` measured (ADN without generator norms, 64 px patches,
# EMA, metal fill, the identity loss (lambda_idt 10), a 30 mm implant band (10 mm for MRI), the
# change soft-thresholded at 0.1 of the range (300 HU), lr 2e-4, width 16, 2 residual blocks,
# and for madn the similarity term at lambda_sim 0.1 (at 1, the paper's weight, it cost 0.5 dB
# of CT PSNR against multichannel at this width; ablation 7), half of the metal slices'
# patches centred on the implant (patch_focus 0.5, ablation 8), and for the variants with an MRI
# channel the void-inpainting term (lambda_void 5, discs of up to 12 px; ablation 9), which is
# dropped with the patch on slices no larger than it (the demo's 64 px slices of 6 mm pixels,
# where a 12 px disc would be 72 mm and where it was not measured)), and a residual MRI decoder
# (G_I adds a change to the MRI, starting as the identity) with a 30 mm MRI band (ablation 18),
# which goes with the void term: without it a residual MRI stays the identity (ablation 2), so
# the MRI keeps ADN's synthesis and its 10 mm band there, as with --no-residual), and with a
# residual MRI the artefact-consistency term on the CT only (ablation 19);
# "paper": ADN/MADN as
# published (madn_core's defaults: lr 1e-5, width 64, norms, whole image).
RECIPES: dict[str, dict[str, Any]] = {
    "quality": {
        "network": {
            "base_channels": 16,
            "discriminator_channels": 16,
            "num_res": 2,
            "encoder_norm": "none",
            "decoder_norm": "none",
            "up_norm": "none",
            "correction_band_mm": 30.0,
            "mri_band_mm": RESIDUAL_MRI_BAND_MM,
            "residual": True,
            "residual_channels": ["mri"],
            "metal_fill": True,
            "correction_shrink": 0.1,
            "mri_shrink": 0.0,
        },
        "loss": {
            "lambda_idt": 10.0,
            "lambda_sim": 0.1,
            "lambda_void": 5.0,
            "void_radius_px": 12.0,
        },
        "optim": {"lr": 2e-4},
        "train": {"ema_decay": 0.999, "patch": 64, "patch_focus": 0.5},
    },
    "paper": {},
}
RECIPE_STEPS = 1000  # generator steps `madn train` runs by default with the quality recipe


def recipe_model(name: str, image_size: int) -> dict[str, Any]:
    """The `model:` mapping of recipe `name` for slices of `image_size` px (a patch only when
    it is smaller than the slice)."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    model = {section: dict(values) for section, values in RECIPES[name].items()}
    train = model.get("train", {})
    if train.get("patch", 0) >= image_size:
        train["patch"] = 0
        model.get("loss", {}).pop("lambda_void", None)
        model.get("loss", {}).pop("void_radius_px", None)
        if "residual_channels" in model.get("network", {}):  # it learns through the void term
            model["network"].pop("residual")  # (build_config then picks ADN's MRI band)
            model["network"].pop("residual_channels")
    return model


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(settings: dict[str, Any], image_size: int) -> MADNConfig:
    """A MADNConfig from settings keyed like the flags (`model:` takes any other field;
    `recipe:` a named starting point under both, default "paper")."""
    base = _merge(
        recipe_model(settings.get("recipe", "paper"), image_size),
        dict(settings.get("model") or {}),
    )
    base.setdefault("variant", settings.get("variant", "madn"))
    base["image_size"] = image_size
    base.setdefault("train", {}).setdefault("epochs", 1)
    config = MADNConfig.from_dict(base)
    overrides = {CONFIG_KEYS[k]: v for k, v in settings.items() if k in CONFIG_KEYS}
    if settings.get("residual_channels") and settings.get("residual") is None:
        overrides["network.residual"] = True  # naming the channels asks for the residual path
    elif settings.get("residual") and not settings.get("residual_channels"):
        overrides["network.residual_channels"] = None  # --residual alone: every channel
    if "base_channels" in settings:
        overrides["network.discriminator_channels"] = settings["base_channels"]
    config = config.with_overrides(overrides) if overrides else config
    if settings.get("recipe", "paper") == "quality" and "mri" in config.channels:
        model = settings.get("model") or {}
        chosen = model.get("network", {}).get("mri_band_mm")
        residual_mri = config.residual_mask[config.channels.index("mri")]
        band = mri_band(residual_mri) if chosen is None else chosen  # 0 is a choice: the CT's
        recipe: dict[str, Any] = {"network.mri_band_mm": band}
        if "art_channels" not in model.get("loss", {}):
            recipe["loss.art_channels"] = art_channels(residual_mri)
        config = config.with_overrides(recipe)
    return config


def art_channels(residual_mri: bool) -> list[str] | None:
    """The channels the quality recipe's artefact-consistency term compares: the CT only for a
    residual MRI decoder, which learns from the void term, and which the term would hold at its
    input (the artefact branch draws no MRI void; ablation 19); every channel (None) for ADN's."""
    return ["ct"] if residual_mri else None


def mri_band(residual_mri: bool) -> float:
    """The quality recipe's MRI band (mm) for a residual MRI decoder or ADN's synthesis."""
    return RESIDUAL_MRI_BAND_MM if residual_mri else SYNTHESISED_MRI_BAND_MM
