"""The quality benchmark (`make quality`): do the models beat No MAR, and by how much?

Seeded, end to end on the synthetic benchmark:
1. synthesize SUBJECTS hip CT/MRI subjects (METAL_FRACTION implanted) at SIZE px over a 384 mm
   field of view (1.5 mm pixels at 256), ingest them with TEST_SUBJECTS in the test split;
2. train adn-ct, adn-mr, multichannel and madn (LNCC) with the same recipe (environment
   variables below), keeping each run's best.ckpt (EMA weights, chosen by val/score);
3. run the paper's evaluation (`pipelines.evaluation.evaluate`) with LI and NMAR beside them, on
   the implanted test subjects, plus the network's own harm on the metal-free test slices (mean
   |output - input| in the body, HU, with every slice run through the network);
4. test the targets with one-sided paired t-tests over test subjects (p < 0.05) and write
   OUT/summary.json, OUT/quality.md (and docs/quality.md with DOCS=1), OUT/curves.png, and a
   pass/fail table on stdout.

Environment (the defaults took 43.6 minutes on 2 idle CPU cores from a fresh clone on 2026-12-08,
synthesis included; docs/benchmarks.md):
OUT, SUBJECTS, METAL_FRACTION, SIZE, SLICES, TEST_SUBJECTS, STEPS (generator steps per
variant), WIDTH, NUM_RES, DISC_LAYERS (stride-2 layers of each discriminator), PATCH,
PATCH_FOCUS (`train.patch_focus`), BATCH, LR, RESIDUAL (1 by default) and RESIDUAL_CHANNELS
(the channels G_I corrects residually: mri by default, so the CT keeps ADN's synthesis; ct,mri
for both; ablation 18), SKIPS, NORM, EMA, VAL_EVERY (validate, and so consider for best.ckpt,
every N-th epoch; 2 by default), BAND_MM, MRI_BAND_MM (30 mm for a residual MRI, 10 mm
otherwise, by default), SHRINK
(`network.correction_shrink`, 0.1 by default), MRI_SHRINK (`network.mri_shrink`, the MRI
channel's own shrink, 0 by default; set it to SHRINK for one shrink on both), SHRINK_RULE
(`network.shrink_rule`: soft, garrote or hard; soft by default), METAL_FILL, GATED,
LAMBDA_IDT, LAMBDA_ADV and LAMBDA_ART (ADN's 1 and 20 by default), LAMBDA_VOID and
VOID_RADIUS_PX (the MRI void-inpainting term, `madn_core.voids`; 5 and 12 px by default),
VOID_SHAPE (its voids: disc or soft; disc by default), ART_CHANNELS (the channels the
artefact-consistency term compares: ct for a residual MRI, all otherwise, by default; ct,mri
for all; ablation 19),
LAMBDA_SIM (madn's similarity weight, 0.1 by default), SIMILARITY (madn's similarity measure:
lncc, cc or nmi; lncc by default), FULL_CYCLE (`loss.full_cycle`: 1 or 0 to force the
self-synthesis term on or off; unset, each variant's default: on for madn only), SEED (the
training seed; the data stay seed 7), VARIANTS (a comma-separated subset of the four, e.g. for
a second seed; the targets that need a missing variant are skipped), PARALLEL, WORKERS,
DEVICE, AMP (bf16 autocast on a GPU), DOCS, DATA (an ingested dataset to use instead of
step 1).

An OUT whose trainings finished is not trained again: run it again with other inference-only
settings (BAND_MM, MRI_BAND_MM, SHRINK, MRI_SHRINK, SHRINK_RULE) to re-evaluate the same
weights with them (docs/model.md, ablation 11).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from madn_core.checkpoint import load_model  # noqa: E402
from madn_core.config import MADNConfig  # noqa: E402
from pipelines.data.dataset import SliceDataset, channels_for_variant  # noqa: E402
from pipelines.data.intensity import unit_to_hu  # noqa: E402
from pipelines.evaluation.evaluate import NO_MAR, EvaluationConfig, evaluate  # noqa: E402
from pipelines.io.atomic import write_text_atomic  # noqa: E402
from pipelines.training.train import train_model  # noqa: E402
from pipelines.training.validation import correct_batches  # noqa: E402
from tune.train_settings import art_channels, mri_band  # noqa: E402

VARIANTS = ("adn-ct", "adn-mr", "multichannel", "madn")
WHOLE = " (whole image)"  # label suffix of a network evaluated without its implant band
NO_SHRINK = " (no shrink)"  # ... and of one evaluated without its shrunk change
ABLATION_MEASURES = (
    "ct_psnr_overall",
    "ct_psnr_near",
    "sigma_implanted",
    "mri_psnr_overall",
    "mri_psnr_near",
)
CT_MODELS = ("adn-ct", "multichannel", "madn")
MRI_MODELS = ("adn-mr", "multichannel", "madn")


def env(name: str, default: Any) -> Any:
    """An environment setting, parsed to the type of its default."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    return type(default)(raw)


def settings() -> dict[str, Any]:
    """The run's settings from the environment (defaults: the recipe of docs/model.md)."""
    s = raw_settings()
    chosen = channel_list(s["residual_channels"]) or ["mri"]
    residual_mri = s["residual"] and "mri" in chosen
    if s["mri_band_mm"] < 0:
        s["mri_band_mm"] = mri_band(residual_mri)
    if not s["art_channels"]:
        s["art_channels"] = ",".join(art_channels(residual_mri) or [])
    return s


def raw_settings() -> dict[str, Any]:
    return {
        "out": env("OUT", "runs/quality"),
        "subjects": env("SUBJECTS", 28),
        "metal_fraction": env("METAL_FRACTION", 0.75),
        "size": env("SIZE", 256),
        "slices": env("SLICES", 4),
        "test_subjects": env("TEST_SUBJECTS", 12),
        "steps": env("STEPS", 1500),
        "width": env("WIDTH", 16),
        "num_res": env("NUM_RES", 2),
        "disc_layers": env("DISC_LAYERS", 2),
        "patch": env("PATCH", 64),
        "patch_focus": env("PATCH_FOCUS", 0.5),
        "batch": env("BATCH", 4),
        "lr": env("LR", 2e-4),
        "residual": env("RESIDUAL", True),
        "residual_channels": env("RESIDUAL_CHANNELS", "mri"),
        "skips": env("SKIPS", 0),
        "norm": env("NORM", "none"),
        "ema": env("EMA", 0.999),
        "val_every": env("VAL_EVERY", 2),
        "band_mm": env("BAND_MM", 30.0),
        "mri_band_mm": env("MRI_BAND_MM", -1.0),  # < 0: the recipe's, by the MRI decoder
        "shrink": env("SHRINK", 0.1),
        "mri_shrink": env("MRI_SHRINK", 0.0),
        "shrink_rule": env("SHRINK_RULE", "soft"),
        "metal_fill": env("METAL_FILL", True),
        "gated": env("GATED", False),
        "lambda_idt": env("LAMBDA_IDT", 10.0),
        "lambda_adv": env("LAMBDA_ADV", 1.0),
        "lambda_art": env("LAMBDA_ART", 20.0),
        "lambda_void": env("LAMBDA_VOID", 5.0),
        "void_radius_px": env("VOID_RADIUS_PX", 12.0),
        "void_shape": env("VOID_SHAPE", "disc"),
        "art_channels": env("ART_CHANNELS", ""),
        "lambda_sim": env("LAMBDA_SIM", 0.1),
        "similarity": env("SIMILARITY", "lncc"),
        "full_cycle": env("FULL_CYCLE", ""),
        "seed": env("SEED", 7),
        "variants": env("VARIANTS", ",".join(VARIANTS)),
        "parallel": env("PARALLEL", 2),
        "workers": env("WORKERS", 2),
        "device": env("DEVICE", "cpu"),
        "amp": env("AMP", False),
        "docs": env("DOCS", False),
        "data": env("DATA", ""),
    }


def chosen_variants(s: dict[str, Any]) -> tuple[str, ...]:
    """The VARIANTS setting as a tuple in the benchmark's order; a one-line error for a name
    that is not one of the four."""
    names = [v.strip() for v in s["variants"].split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or not names:
        raise SystemExit(
            f"VARIANTS={s['variants']!r}: expected a comma-separated subset of "
            + ", ".join(VARIANTS)
        )
    return tuple(v for v in VARIANTS if v in names)


def prepare_data(s: dict[str, Any], out: Path) -> SliceDataset:
    """Steps 1: synthesize (once) and ingest (cached); or DATA, a dataset ingested before (on
    a machine without SimpleITK or xraydb, e.g. a GPU box, the benchmark then runs on it)."""
    if s["data"]:
        return SliceDataset(s["data"])
    from pipelines.data.ingest import IngestConfig, ingest
    from pipelines.data.registration import RegistrationConfig
    from pipelines.synth.generate import SynthConfig, synthesize

    manifest = out / "synth" / "manifest.csv"
    if not manifest.exists():
        config = SynthConfig(
            subjects=s["subjects"],
            metal_fraction=s["metal_fraction"],
            size=s["size"],
            slices=s["slices"],
            seed=7,
        )
        synthesize(config, out / "synth", workers=s["workers"])
    config = IngestConfig(
        size=s["size"],
        registration=RegistrationConfig(mode="none"),
        val_fraction=0.15,
        test_subjects=str(s["test_subjects"]),
        seed=7,
    )
    return SliceDataset(ingest(manifest, out / "cache", config, workers=s["workers"]).path)


def full_cycle_override(raw: str) -> bool | None:
    """FULL_CYCLE as `loss.full_cycle`: None (the variant's default) when unset or empty."""
    if raw == "":
        return None
    if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise SystemExit(f"FULL_CYCLE={raw!r}: expected 1 or 0, or unset for the variant's default")
    return raw.lower() in ("1", "true", "yes")


def channel_list(raw: str) -> list[str] | None:
    """A comma-separated channel list (RESIDUAL_CHANNELS, ART_CHANNELS): None (every channel)
    when unset."""
    return [name.strip() for name in raw.split(",")] if raw.strip() else None


def recipe(s: dict[str, Any], variant: str, dataset: SliceDataset) -> MADNConfig:
    """The model config every variant shares: only the variant differs."""
    steps_per_epoch = max(1, len(dataset.select(split="train", has_metal=True)) // s["batch"])
    epochs = max(1, math.ceil(s["steps"] / steps_per_epoch))
    norm = s["norm"]
    return MADNConfig.from_dict(
        {
            "variant": variant,
            "image_size": dataset.size,
            "network": {
                "base_channels": s["width"],
                "discriminator_channels": s["width"],
                "discriminator_layers": s["disc_layers"],
                "num_res": s["num_res"],
                "residual": s["residual"],
                "residual_channels": channel_list(s["residual_channels"]),
                "content_skips": s["skips"],
                "encoder_norm": norm,
                "decoder_norm": norm,
                "up_norm": "layer" if norm == "layer" else norm,
                "correction_band_mm": s["band_mm"],
                "mri_band_mm": s["mri_band_mm"],
                "correction_shrink": s["shrink"],
                "mri_shrink": s["mri_shrink"],
                "shrink_rule": s["shrink_rule"],
                "metal_fill": s["metal_fill"],
                "gated": s["gated"],
            },
            "loss": {
                "lambda_idt": s["lambda_idt"],
                "lambda_sim": s["lambda_sim"],
                "similarity": s["similarity"],
                "lambda_adv": s["lambda_adv"],
                "lambda_art": s["lambda_art"],
                "lambda_void": s["lambda_void"],
                "void_radius_px": s["void_radius_px"],
                "void_shape": s["void_shape"],
                "art_channels": channel_list(s["art_channels"]),
                "full_cycle": full_cycle_override(s["full_cycle"]),
            },
            "optim": {"lr": s["lr"]},
            "train": {
                "epochs": epochs,
                "batch_size": s["batch"],
                "patch": s["patch"] if s["patch"] < dataset.size else 0,
                "patch_focus": s["patch_focus"],
                "ema_decay": s["ema"],
                "val_every": s["val_every"],
                "seed": s["seed"],
                "device": s["device"],
                "amp": s["amp"],
            },
        }
    )


def train_variant(s: dict[str, Any], variant: str, location: str, out: Path) -> Path:
    """Train one variant (resumed if interrupted) with the shared recipe; its best.ckpt. Runs
    in its own process when PARALLEL > 1, with the cores shared out."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, s["parallel"])))
    dataset = SliceDataset(location)
    run = out / "runs" / variant
    resume = (run / "last.ckpt").exists()
    started = time.monotonic()
    result = train_model(
        dataset,
        recipe(s, variant, dataset),
        run,
        resume=resume,
        progress=s["parallel"] <= 1,
        max_val_slices=48,
    )
    print(f"trained {variant} in {time.monotonic() - started:.0f} s", flush=True)
    return result.best


def train_all(s: dict[str, Any], dataset: SliceDataset, out: Path) -> dict[str, Path]:
    """Step 2: one run per variant, PARALLEL at a time; their best.ckpt by variant."""
    variants = chosen_variants(s)
    if s["parallel"] <= 1:
        return {v: train_variant(s, v, dataset.location, out) for v in variants}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(s["parallel"], mp_context=context) as pool:
        futures = {v: pool.submit(train_variant, s, v, dataset.location, out) for v in variants}
        return {v: future.result() for v, future in futures.items()}


def with_inference(model: torch.nn.Module, overrides: dict[str, Any]) -> torch.nn.Module:
    """A copy of `model` with other inference settings (dotted `network.` keys that leave the
    weights as they are, e.g. the implant band or the change smoothing)."""
    from madn_core.model import MADN

    copy = MADN(model.config.with_overrides(overrides))
    copy.load_state_dict(model.state_dict())
    return copy.eval()


def print_and_write_table(text: str, rows: list[dict[str, Any]], out: str | None) -> None:
    """Print a bench script's markdown table; with `out`, write it there and `rows` as JSON
    beside it (FILE.json), each atomically."""
    print(text)
    if out:
        write_text_atomic(Path(out), text + "\n")
        write_text_atomic(Path(out).with_suffix(".json"), json.dumps(rows, indent=2))


def inference(s: dict[str, Any]) -> dict[str, Any]:
    """The settings' inference-only keys (band, shrink), applied to every loaded best.ckpt, so
    that a finished OUT re-run with other values re-evaluates its models without training."""
    return {
        "network.correction_band_mm": s["band_mm"],
        "network.mri_band_mm": s["mri_band_mm"],
        "network.correction_shrink": s["shrink"],
        "network.mri_shrink": s["mri_shrink"],
        "network.shrink_rule": s["shrink_rule"],
    }


def without_band(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` that corrects the whole image (`network.correction_band_mm` = 0)."""
    return with_inference(model, {"network.correction_band_mm": 0.0})


def harm_on_metal_free_slices(
    models: dict[str, torch.nn.Module], dataset: SliceDataset, split: str = "test"
) -> dict[str, dict[str, float]]:
    """Mean |output - input| in HU inside the body (input CT > -500 HU) on the metal-free
    slices of `split`, every slice run through the model's correction with its implant band
    off (the band and `madn correct`'s pass-through would leave these slices untouched; the
    shrink acts on every slice alike, so it stays): `harm_hu`; `raw_harm_hu`: the same for the
    decoder's own output (shrink and smoothing off too). Beside them the input's muscle noise
    (HU std inside the labelled muscles), the scale the harm should stay below."""
    positions = dataset.select(split=split, has_metal=False)
    columns = ["ct", "mri", "labels", "ct_min", "ct_max"]
    data = dataset.read(positions, columns)
    window = (float(data["ct_min"][0]), float(data["ct_max"][0]))
    input_hu = unit_to_hu(data["ct"], *window)
    body = input_hu > -500.0
    muscle = data["labels"] > 0
    noise = float(np.mean([img[m].std() for img, m in zip(input_hu, muscle, strict=True)]))
    raw = {
        "network.correction_band_mm": 0.0,
        "network.correction_shrink": 0.0,
        "network.mri_shrink": 0.0,
        "network.correction_smooth_mm": 0.0,
    }
    result = {}
    for name, model in models.items():
        channels = channels_for_variant(model.config.variant)
        images = np.stack([data[c] for c in channels], axis=1)
        entry: dict[str, float] = {"input_muscle_noise_hu": noise, "slices": len(images)}
        correctors = {"harm_hu": without_band(model), "raw_harm_hu": with_inference(model, raw)}
        for key, corrector in correctors.items():
            entry[key] = 0.0  # an MRI-only model leaves the CT as it is
            if "ct" in channels:
                output = correct_batches(corrector, images)
                hu = unit_to_hu(output[:, channels.index("ct")], *window)
                entry[key] = float(np.abs(hu - input_hu)[body].mean())
        result[name] = entry
    return result


def per_subject(report: Path) -> pd.DataFrame:
    """One row per (method, subject): CT/MRI PSNR and SSIM overall and near the implant, and the
    mean implanted-side sigma_CT over the four muscles, from the evaluation's case tables."""
    truth = pd.read_csv(report / "ground_truth_cases.csv")
    truth["measure"] = truth["modality"].str.lower() + "_" + truth["metric"] + "_" + truth["region"]
    wide = truth.pivot_table(index=["method", "subject"], columns="measure", values="value")
    sigma = pd.read_csv(report / "sigma_ct_cases.csv")
    implanted = sigma[sigma["side"] == "implanted"]
    wide["sigma_implanted"] = implanted.groupby(["method", "subject"])["sigma_hu"].mean()
    for muscle, rows in implanted.groupby("muscle"):
        wide[f"sigma_implanted_{muscle.lower()}"] = rows.groupby(["method", "subject"])[
            "sigma_hu"
        ].mean()
    return wide.reset_index()


def paired(frame: pd.DataFrame, method: str, other: str, measure: str, greater: bool) -> dict:
    """One-sided paired t-test over subjects that `method` is better than `other` on
    `measure` (greater or lower is better); mean difference method - other."""
    a = frame[frame["method"] == method].set_index("subject")[measure]
    b = frame[frame["method"] == other].set_index("subject")[measure]
    both = pd.concat([a, b], axis=1, keys=["a", "b"]).dropna()
    diff = both["a"] - both["b"]
    if len(diff) < 2 or float(diff.std()) == 0.0:
        p = math.nan
    else:
        p = float(stats.ttest_1samp(diff, 0.0, alternative="greater" if greater else "less").pvalue)
    return {"mean_diff": float(diff.mean()), "p": p, "n": len(diff)}


def targets(frame: pd.DataFrame, harm: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Every target of the benchmark: name, method, measured difference, p, pass; a target
    whose method or comparison was not trained (VARIANTS) is left out."""
    rows = []
    present = set(frame["method"])

    def add(method: str, name: str, result: dict, passed: bool) -> None:
        if method not in present or ("multichannel" in name and "multichannel" not in present):
            return
        rows.append({"method": method, "target": name, **result, "pass": bool(passed)})

    for m in CT_MODELS:
        for measure, greater in (("ct_psnr_overall", True), ("ct_psnr_near", True)):
            r = paired(frame, m, NO_MAR, measure, greater)
            add(m, f"{measure} > No MAR", r, r["p"] < 0.05 and r["mean_diff"] > 0)
        r = paired(frame, m, NO_MAR, "sigma_implanted", greater=False)
        add(m, "sigma_implanted < No MAR", r, r["p"] < 0.05 and r["mean_diff"] < 0)
        h = harm[m]["harm_hu"] if m in harm else math.nan
        add(m, "harm on metal-free slices < 20 HU", {"mean_diff": h, "p": math.nan, "n": 0}, h < 20)
    for m in MRI_MODELS:
        r = paired(frame, m, NO_MAR, "mri_psnr_near", True)
        add(m, "mri_psnr_near > No MAR", r, r["p"] < 0.05 and r["mean_diff"] > 0)
        r = paired(frame, m, NO_MAR, "mri_psnr_overall", True)
        add(m, "mri_psnr_overall >= No MAR - 0.5 dB", r, r["mean_diff"] >= -0.5)
    for measure, greater in (
        ("ct_psnr_overall", True),
        ("ct_psnr_near", True),
        ("sigma_implanted", False),
    ):
        r = paired(frame, "multichannel", "madn", measure, greater)
        add("madn", f"{measure} not worse than multichannel", r, not r["p"] < 0.05)
    for m in CT_MODELS:
        r = paired(frame, m, "NMAR", "ct_psnr_near", True)
        add(m, "stretch: ct_psnr_near > NMAR", r, r["p"] < 0.05 and r["mean_diff"] > 0)
    return rows


def setting_ablation(frame: pd.DataFrame, suffix: str) -> list[dict[str, Any]]:
    """Per variant and measure: mean over subjects of (as trained - the method `variant +
    suffix`, the same network with one inference setting off), and the two-sided paired
    p-value: what that setting changes."""
    rows = []
    for variant in [v for v in VARIANTS if v in set(frame["method"])]:
        for measure in ABLATION_MEASURES:
            if measure not in frame or frame[frame["method"] == variant][measure].isna().all():
                continue
            result = paired(frame, variant, f"{variant}{suffix}", measure, greater=True)
            p = result["p"]
            two_sided = min(1.0, 2 * min(p, 1 - p)) if math.isfinite(p) else math.nan
            rows.append({"method": variant, "measure": measure, **result, "p": two_sided})
    return rows


def method_means(frame: pd.DataFrame, harm: dict[str, dict[str, float]]) -> dict[str, dict]:
    means = frame.drop(columns="subject").groupby("method").mean()
    summary = {m: {k: float(v) for k, v in row.items()} for m, row in means.iterrows()}
    for m, values in harm.items():
        summary[m].update(values)
    return summary


CURVES = (
    ("val/score", "val/score: mean PSNR gain (dB)"),
    ("psnr_ct_near", "CT PSNR near implant - No MAR (dB)"),
    ("psnr_mri_near", "MRI PSNR near implant - No MAR (dB)"),
)


def learning_curves(out: Path, variants: tuple[str, ...] = VARIANTS) -> Path:
    """Validation curves of every variant against No MAR (the dashed 0 line), per epoch, as
    OUT/curves.png: val/score and the near-implant CT and MRI PSNR gains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.5))
    for variant in variants:
        lines = (out / "runs" / variant / "metrics.jsonl").read_text().splitlines()
        history = [h for h in map(json.loads, lines) if h.get("val/score") is not None]
        epochs = [h["epoch"] for h in history]  # the validated ones (VAL_EVERY)
        for axis, (key, title) in zip(axes, CURVES, strict=True):
            if key == "val/score":
                values = [h[key] for h in history]
            else:
                values = [h[f"val/{key}"] - h[f"val/nomar/{key}"] for h in history]
            axis.plot(epochs, values, label=variant)
            axis.set_title(title, fontsize=9)
    for axis in axes:
        axis.axhline(0.0, color="k", lw=0.8, ls="--")
        axis.set_xlabel("epoch")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "curves.png", dpi=110)
    plt.close(figure)
    return out / "curves.png"


def markdown(
    s: dict, summary: dict, rows: list[dict], seconds: float, ablation: dict[str, list[dict]]
) -> str:
    """The report (OUT/quality.md, docs/quality.md): when, where and how long (`seconds` of wall
    time), the settings, the metrics per method, the targets and the inference ablations."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    lines = [
        "# Quality benchmark (`make quality`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine}, {seconds / 60:.1f} min"
        + resumed_note(s.get("resumed", []))
        + ".",
        f"Settings: `{json.dumps({k: v for k, v in s.items() if k != 'docs'})}`",
        "",
        *metrics_table(summary),
        "",
        *targets_table(rows),
        *ablation_tables(s, ablation),
        "",
        "![validation curves](figures/quality/curves.png)",
        "",
    ]
    return "\n".join(lines)


def metrics_table(summary: dict) -> list[str]:
    """Markdown rows: each method's mean test metrics (PSNR dB, SSIM, sigma and harm HU)."""
    lines = [
        "| method | CT PSNR | CT PSNR near | CT SSIM | sigma implanted (HU) | MRI PSNR | "
        "MRI PSNR near | harm (HU) | raw harm (HU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, v in summary.items():
        lines.append(
            f"| {m} | {v.get('ct_psnr_overall', math.nan):.2f} | "
            f"{v.get('ct_psnr_near', math.nan):.2f} | {v.get('ct_ssim_overall', math.nan):.3f} | "
            f"{v.get('sigma_implanted', math.nan):.1f} | {v.get('mri_psnr_overall', math.nan):.2f} "
            f"| {v.get('mri_psnr_near', math.nan):.2f} | {v.get('harm_hu', math.nan):.1f} "
            f"| {v.get('raw_harm_hu', math.nan):.1f} |"
        )
    return lines


def targets_table(rows: list[dict]) -> list[str]:
    """Markdown rows: each target's paired test against No MAR and its result."""
    lines = [
        "| method | target | mean diff | p (one-sided) | n | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        result = "pass" if r["pass"] else "MISS"
        lines.append(
            f"| {r['method']} | {r['target']} | {r['mean_diff']:+.3f} | {r['p']:.3g} | {r['n']} "
            f"| {result} |"
        )
    return lines


def ablation_tables(s: dict, ablation: dict[str, list[dict]]) -> list[str]:
    """Markdown: one captioned table per inference ablation (band, shrink) that has rows."""
    captions = {
        "band": (
            f"Ablation: the implant band ({s['band_mm']:g} mm) against the same network on the "
            "whole image (mean over test subjects of banded - whole; two-sided paired p).",
            "band - whole",
        ),
        "shrink": (
            f"Ablation: the shrunk change (`correction_shrink` {s['shrink']:g}, `mri_shrink` "
            f"{s['mri_shrink']:g}) against the same network without it, band on (mean over test "
            "subjects of shrunk - not; two-sided paired p).",
            "shrunk - not",
        ),
    }
    lines: list[str] = []
    for name, table in ablation.items():
        if not table:
            continue
        caption, column = captions[name]
        lines += [
            "",
            caption,
            "",
            f"| method | measure | {column} | p | n |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['method']} | {r['measure']} | {r['mean_diff']:+.3f} | {r['p']:.3g} | {r['n']} |"
            for r in table
        ]
    return lines


def resumed_note(resumed: list[str]) -> str:
    """The wall-time caveat for runs this invocation found trained (or partly trained) in OUT."""
    if not resumed:
        return ""
    return f" (resuming {', '.join(resumed)} from an earlier invocation's last.ckpt)"


def main() -> int:
    s = settings()
    chosen_variants(s)  # a bad VARIANTS fails here, before any data or training
    out = Path(s["out"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    start = time.monotonic()
    dataset = prepare_data(s, out)
    s["resumed"] = [v for v in chosen_variants(s) if (out / "runs" / v / "last.ckpt").exists()]
    checkpoints = train_all(s, dataset, out)
    models = {v: with_inference(load_model(p), inference(s)) for v, p in checkpoints.items()}
    config = EvaluationConfig(dice=False, workers=s["workers"], device=s["device"])
    evaluated = dict(models)
    if s["band_mm"] > 0:  # the ablation: the same networks on the whole image
        evaluated.update({f"{v}{WHOLE}": without_band(m) for v, m in models.items()})
    no_shrink = {"network.correction_shrink": 0.0, "network.mri_shrink": 0.0}
    shrunk = s["shrink"] > 0 or s["mri_shrink"] > 0
    if shrunk:  # and without the shrink
        evaluated.update(
            {f"{v}{NO_SHRINK}": with_inference(m, no_shrink) for v, m in models.items()}
        )
    evaluate(dataset, evaluated, out / "report", config)
    frame = per_subject(out / "report")
    harm = harm_on_metal_free_slices(models, dataset)
    summary, rows = method_means(frame, harm), targets(frame, harm)
    ablations = {
        "band": setting_ablation(frame, WHOLE) if s["band_mm"] > 0 else [],
        "shrink": setting_ablation(frame, NO_SHRINK) if shrunk else [],
    }
    seconds = time.monotonic() - start
    learning_curves(out, chosen_variants(s))
    payload = {
        "settings": s,
        "seconds": seconds,
        "methods": summary,
        "targets": rows,
        "band_ablation": ablations["band"],
        "shrink_ablation": ablations["shrink"],
    }
    write_text_atomic(out / "summary.json", json.dumps(payload, indent=2, default=float))
    text = markdown(s, summary, rows, seconds, ablations)
    write_text_atomic(out / "quality.md", text)
    if s["docs"]:
        figures = ROOT / "docs" / "figures" / "quality"
        figures.mkdir(parents=True, exist_ok=True)
        for name in ("curves.png",):
            (figures / name).write_bytes((out / name).read_bytes())
        (figures / "comparison.png").write_bytes((out / "report" / "comparison.png").read_bytes())
        write_text_atomic(ROOT / "docs" / "quality.md", text)
    print(text)
    core = [r for r in rows if not r["target"].startswith("stretch")]
    stretch = [r for r in rows if r["target"].startswith("stretch")]
    passed = sum(r["pass"] for r in core)
    print(
        f"\n{passed} of {len(core)} targets passed, {len(core) - passed} missed; stretch goal "
        f"met by {sum(r['pass'] for r in stretch)} of {len(stretch)}"
    )
    return 0 if passed == len(core) else 1


if __name__ == "__main__":
    raise SystemExit(main())
