"""The paper's evaluation protocol on a dataset's test subjects (`madn evaluate`).

Methods: No MAR (the input), the classical baselines LI and NMAR (CT only), and any number of
trained models (each corrects the modalities its variant takes). No MAR, LI and NMAR always
work on the raw CT. A model trained after a classical MAR (`data.ct_prior`) gets that method's
CT as its input (the dataset's stored `ct_prior` column, or computed here), so its row is the
whole pipeline's. Only implanted test subjects are evaluated, as in the paper. Experiments:

1. CT: sigma_CT, the standard deviation in HU of the corrected CT inside each muscle (GMAX,
   GMED, GMIN, TFL) over the subject's volume, separately on the implanted and the contralateral
   side. The side is split at the subject's muscle midline (mean x of all muscle voxels); the
   implanted side is the one holding the metal. Lower is better (artefacts add variance).
2. MRI: segmentation propagation (`pipelines.evaluation.propagation`): Dice per muscle of
   labels propagated between every ordered pair of the methods' MRI volumes. Higher is better.
3. Synthetic ground truth (when the dataset has it): PSNR and SSIM (images in [-1, 1], data range
   2) of CT and MRI, on the slices with metal, "overall" = every pixel but the metal, "near" =
   the band within NEAR_MM of the implant; the mean over a subject's slices is one case.

Every method is compared with a reference (the first MADN model, else the last model given, else
No MAR) by two-tailed paired t-tests over the cases (subjects, or registration pairs); p < 0.05
is marked `*` in the tables, and `†` where it holds after Holm's correction over the table
(`pipelines.evaluation.paired_stats`). Outputs in `out_dir`: `<experiment>_cases.csv` (one row
per case), `<experiment>_summary.csv` (n, mean, std, p, p_holm, effect size d_z),
`<experiment>.md`, `sigma_ct_boxplot.png`, `dice_boxplot.png`, `comparison.png` (the paper's
Fig. 2: input, each method, ground truth, CT and MRI rows, implant outlined in red), `report.md`
(all tables) and `summary.json`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from madn_core.checkpoint import load_model
from madn_core.metrics import psnr, ssim
from madn_core.model import MADN
from madn_core.trainer import resolve_device
from pipelines.baselines.mar import li_mar, nmar
from pipelines.data.ct_prior import PRIOR_COLUMN, prior_of_slices, stored_prior
from pipelines.data.dataset import DatasetError, SliceDataset, channels_for_variant
from pipelines.data.intensity import hu_to_unit, unit_to_hu
from pipelines.data.registration import RegistrationConfig
from pipelines.evaluation.figures import comparison_grid, dice_boxplot, sigma_boxplot
from pipelines.evaluation.paired_stats import markdown_table, paired_summary
from pipelines.evaluation.propagation import MUSCLES, MRIVolume, default_registration, propagate_all
from pipelines.io.atomic import atomic_path, write_text_atomic
from pipelines.training.validation import correct_batches, near_implant_band

NEAR_MM = 30.0
NO_MAR = "No MAR"
BASELINES = {"li": ("LI", li_mar), "nmar": ("NMAR", nmar)}
VARIANT_LABELS = {
    "adn-ct": "ADN CT",
    "adn-mr": "ADN MR",
    "multichannel": "Multichannel ADN",
    "madn": "MADN",
}


class EvaluationError(ValueError):
    """The dataset or the models cannot be evaluated as asked; the message says why."""


@dataclass(frozen=True)
class EvaluationConfig:
    """split: the subjects evaluated; baselines: subset of li, nmar; dice: run the MRI
    propagation experiment; workers: processes for the registrations; device: for the models."""

    split: str = "test"
    baselines: tuple[str, ...] = ("li", "nmar")
    dice: bool = True
    registration: RegistrationConfig = field(default_factory=default_registration)
    workers: int = 1
    device: str = "auto"
    batch_size: int = 16

    def __post_init__(self) -> None:
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise EvaluationError(
                f"unknown baseline(s) {', '.join(unknown)}: choose from {', '.join(BASELINES)}"
            )


@dataclass
class EvaluationResult:
    """Summaries (DataFrames) and files by experiment name: sigma_ct, dice, ground_truth."""

    out_dir: Path
    reference: str
    methods: list[str]
    summaries: dict[str, pd.DataFrame]
    cases: dict[str, pd.DataFrame]
    files: dict[str, Path]


@dataclass
class _Subject:
    """A test subject's slices (Z, H, W) in [-1, 1] and what the measures need. `ct` is the
    raw CT (No MAR); `prior_cts` the CT after each classical MAR a model takes first
    (`data.ct_prior`), the dataset's stored one or computed when first asked for."""

    name: str
    ct: np.ndarray
    mri: np.ndarray
    metal: np.ndarray
    labels: np.ndarray
    ct_window: tuple[float, float]
    spacing_xyz: tuple[float, float, float]
    ct_clean: np.ndarray | None
    mri_clean: np.ndarray | None
    prior_cts: dict[str, np.ndarray] = field(default_factory=dict)

    def model_ct(self, prior: str) -> np.ndarray:
        """The CT a model with `data.ct_prior` == `prior` sees: (Z, H, W) in [-1, 1]."""
        if prior == "none":
            return self.ct
        if prior not in self.prior_cts:
            spacing = np.full(len(self.ct), self.spacing_xyz[0])
            self.prior_cts[prior] = prior_of_slices(
                prior, self.ct, self.metal, spacing, self.ct_window
            )
        return self.prior_cts[prior]


def model_labels(models: Mapping[str, MADN]) -> dict[str, MADN]:
    """Models keyed by display label: given labels are kept; a key that is a path is replaced by
    its variant's name ("MADN", "ADN CT", ...), numbered when a variant repeats."""
    labelled: dict[str, MADN] = {}
    for key, model in models.items():
        label = key
        if not key or os.sep in key or key.endswith(".ckpt") or "://" in key or ":/" in key:
            label = VARIANT_LABELS[model.config.variant]
        base, number = label, 2
        while label in labelled:
            label, number = f"{base} ({number})", number + 1
        labelled[label] = model
    return labelled


def _load_subjects(dataset: SliceDataset, split: str) -> list[_Subject]:
    columns = ["ct", "mri", "metal_mask", "labels", "ct_min", "ct_max", "subject_has_metal"]
    columns += ["spacing_x", "spacing_y", "spacing_z"]
    stored = stored_prior(dataset)
    columns += [PRIOR_COLUMN] if stored != "none" else []
    if dataset.has_ground_truth:
        columns += ["ct_clean", "mri_clean"]
    subjects = []
    for name in dataset.subjects(split):
        data = dataset.read_subject(name, columns)
        if not bool(data["subject_has_metal"][0]):
            continue
        subjects.append(
            _Subject(
                name=name,
                ct=data["ct"],
                mri=data["mri"],
                metal=data["metal_mask"] > 0,
                labels=data["labels"],
                ct_window=(float(data["ct_min"][0]), float(data["ct_max"][0])),
                spacing_xyz=(
                    float(data["spacing_x"][0]),
                    float(data["spacing_y"][0]),
                    float(data["spacing_z"][0]),
                ),
                ct_clean=data.get("ct_clean"),
                mri_clean=data.get("mri_clean"),
                prior_cts={stored: data[PRIOR_COLUMN]} if stored != "none" else {},
            )
        )
    return subjects


def _implant_sides(subject: _Subject) -> tuple[np.ndarray, np.ndarray]:
    """(Z, H, W) bool masks of the implanted and the contralateral half of the body. A
    bilateral subject (a quarter of the metal or more on each half) is implanted on both
    halves and has no contralateral side."""
    columns = np.arange(subject.labels.shape[2])[None, None, :]
    muscle_x = np.nonzero(subject.labels > 0)[2]
    metal_x = np.nonzero(subject.metal)[2]
    midline = float(muscle_x.mean()) if len(muscle_x) else subject.labels.shape[2] / 2
    high_side = np.broadcast_to(columns >= midline, subject.labels.shape)
    high_share = float((metal_x >= midline).mean()) if len(metal_x) else 0.0
    if 0.25 <= high_share <= 0.75:
        everywhere = np.ones(subject.labels.shape, dtype=bool)
        return everywhere, ~everywhere
    implanted = high_side if high_share > 0.5 else ~high_side
    return implanted, ~implanted


def _sigma_cases(
    outputs: Mapping[str, Mapping[str, dict[str, np.ndarray | None]]], subjects: list[_Subject]
) -> pd.DataFrame:
    rows = []
    for subject in subjects:
        sides = dict(zip(("implanted", "contralateral"), _implant_sides(subject), strict=True))
        for method, per_subject in outputs.items():
            ct = per_subject[subject.name]["ct"]
            if ct is None:
                continue
            hu = unit_to_hu(ct, *subject.ct_window)
            for label, muscle in MUSCLES.items():
                for side, region in sides.items():
                    inside = (subject.labels == label) & region & ~subject.metal
                    sigma = float(hu[inside].std()) if inside.sum() >= 20 else math.nan
                    rows.append(
                        {
                            "method": method,
                            "muscle": muscle.upper(),
                            "side": side,
                            "subject": subject.name,
                            "sigma_hu": sigma,
                        }
                    )
    return pd.DataFrame(rows)


def _ground_truth_cases(
    outputs: Mapping[str, Mapping[str, dict[str, np.ndarray | None]]], subjects: list[_Subject]
) -> pd.DataFrame:
    rows = []
    for subject in subjects:
        on = subject.metal.reshape(len(subject.metal), -1).any(axis=1)
        metal = torch.from_numpy(subject.metal[on])[:, None]
        spacing = np.full(int(on.sum()), subject.spacing_xyz[0])
        band = torch.from_numpy(near_implant_band(subject.metal[on], spacing, NEAR_MM))[:, None]
        regions = {"overall": ~metal, "near": band}
        for method, per_subject in outputs.items():
            for modality in ("ct", "mri"):
                image = per_subject[subject.name][modality]
                clean = subject.ct_clean if modality == "ct" else subject.mri_clean
                if image is None or clean is None:
                    continue
                pred = torch.from_numpy(np.ascontiguousarray(image[on]))[:, None]
                target = torch.from_numpy(np.ascontiguousarray(clean[on]))[:, None]
                for region, mask in regions.items():
                    for metric, function in (("psnr", psnr), ("ssim", ssim)):
                        values = function(pred, target, 2.0, mask)
                        finite = values[torch.isfinite(values)]
                        rows.append(
                            {
                                "method": method,
                                "modality": modality.upper(),
                                "metric": metric,
                                "region": region,
                                "subject": subject.name,
                                "value": float(finite.mean()) if finite.numel() else math.nan,
                            }
                        )
    return pd.DataFrame(rows)


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=False)
    return path


def _reference(models: Mapping[str, MADN]) -> str:
    for label, model in models.items():
        if model.config.variant == "madn":
            return label
    return list(models)[-1] if models else NO_MAR


Outputs = dict[str, dict[str, dict[str, np.ndarray | None]]]


@dataclass
class _Report:
    """What the experiments accumulate: Markdown sections, case tables, summaries, files."""

    out: Path
    reference: str
    sections: list[str] = field(default_factory=list)
    cases: dict[str, pd.DataFrame] = field(default_factory=dict)
    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def add_table(self, name: str, heading: str, table: str) -> None:
        self.sections += [heading, table + "\n"]
        self.files[f"{name}.md"] = write_text_atomic(self.out / f"{name}.md", table + "\n")


def _load_models(
    models: Mapping[str, torch.nn.Module | str | os.PathLike[str]],
    dataset: SliceDataset,
    device: torch.device,
) -> dict[str, MADN]:
    loaded = {
        key: (m if isinstance(m, torch.nn.Module) else load_model(m, map_location=device))
        for key, m in models.items()
    }
    for key, model in loaded.items():
        if model.config.image_size != dataset.size:
            raise EvaluationError(
                f"model {key} works on {model.config.image_size} px slices but "
                f"{dataset.location} has {dataset.size} px slices"
            )
    return model_labels({str(k): m for k, m in loaded.items()})


def _test_subjects(dataset: SliceDataset, split: str) -> list[_Subject]:
    if split not in set(dataset.index["split"].tolist()):
        raise DatasetError(f"{dataset.location} has no {split!r} split")
    subjects = _load_subjects(dataset, split)
    if not subjects:
        raise EvaluationError(
            f"{dataset.location}: the {split!r} split has no implanted subject to evaluate"
        )
    return subjects


def _run_methods(
    subjects: list[_Subject],
    nets: Mapping[str, MADN],
    config: EvaluationConfig,
    device: torch.device,
    progress: bool,
) -> Outputs:
    """Every method's output per subject: {"ct": (Z, H, W) in [-1, 1] or None, "mri": ...}."""
    methods = [NO_MAR, *(BASELINES[b][0] for b in config.baselines), *nets]
    outputs: Outputs = {m: {} for m in methods}
    steps = len(subjects) * (len(config.baselines) + len(nets))
    bar = tqdm(total=steps, desc="correct test subjects", unit="run", disable=not progress)
    for subject in subjects:
        outputs[NO_MAR][subject.name] = {"ct": subject.ct, "mri": subject.mri}
        hu = unit_to_hu(subject.ct, *subject.ct_window)
        for key in config.baselines:
            label, function = BASELINES[key]
            corrected = function(hu, subject.metal, pixel_mm=subject.spacing_xyz[0])
            ct = np.clip(hu_to_unit(corrected, *subject.ct_window), -1.0, 1.0)
            outputs[label][subject.name] = {"ct": ct.astype(np.float32), "mri": None}
            bar.update()
        for label, net in nets.items():
            channels = channels_for_variant(net.config.variant)
            given = {"ct": subject.model_ct(net.config.data.ct_prior), "mri": subject.mri}
            inputs = np.stack([given[c] for c in channels], axis=1)
            corrected = correct_batches(
                net.to(device), inputs, config.batch_size, device, metal=subject.metal
            )
            result: dict[str, np.ndarray | None] = {"ct": None, "mri": None}
            for c, name in enumerate(channels):
                result[name] = corrected[:, c]
            outputs[label][subject.name] = result
            bar.update()
    bar.close()
    return outputs


def _methods_with(outputs: Outputs, modality: str) -> list[str]:
    return [m for m in outputs if any(o[modality] is not None for o in outputs[m].values())]


def _sigma_experiment(report: _Report, outputs: Outputs, subjects: list[_Subject]) -> None:
    ct_methods = _methods_with(outputs, "ct")
    sigma = _sigma_cases(outputs, subjects)
    report.cases["sigma_ct"] = sigma
    summary = paired_summary(
        sigma, "sigma_hu", ["muscle", "side"], "subject", report.reference, ct_methods
    )
    report.summaries["sigma_ct"] = summary
    report.add_table(
        "sigma_ct",
        "## CT: sigma_CT in muscle (HU, mean ± std over subjects; lower is better)\n",
        markdown_table(summary, ["muscle", "side"], ct_methods, digits=1),
    )
    report.files["sigma_boxplot"] = sigma_boxplot(
        sigma, ct_methods, report.out / "sigma_ct_boxplot.png"
    )


def _dice_cases(
    outputs: Outputs, subjects: list[_Subject], config: EvaluationConfig, progress: bool
) -> pd.DataFrame:
    volumes = {
        m: [MRIVolume(s.name, outputs[m][s.name]["mri"], s.labels, s.spacing_xyz) for s in subjects]
        for m in _methods_with(outputs, "mri")
    }
    pairs = propagate_all(volumes, config.registration, config.workers, progress)
    return pd.DataFrame(
        [
            {
                "method": p.method,
                "muscle": muscle.upper(),
                "pair": f"{p.source}->{p.target}",
                "dice": value,
            }
            for p in pairs
            for muscle, value in p.dice.items()
        ]
    )


def _dice_experiment(
    report: _Report,
    outputs: Outputs,
    subjects: list[_Subject],
    config: EvaluationConfig,
    progress: bool,
) -> None:
    if len(subjects) < 2:
        report.sections.append(
            "## MRI: Dice\n\nSkipped: label propagation needs two implanted subjects.\n"
        )
        return
    mri_methods = _methods_with(outputs, "mri")
    dice = _dice_cases(outputs, subjects, config, progress)
    report.cases["dice"] = dice
    mri_reference = report.reference if report.reference in mri_methods else mri_methods[-1]
    summary = paired_summary(dice, "dice", ["muscle"], "pair", mri_reference, mri_methods)
    report.summaries["dice"] = summary
    report.add_table(
        "dice",
        "## MRI: Dice of propagated muscle labels (mean ± std over registration pairs; "
        "higher is better)\n",
        markdown_table(summary, ["muscle"], mri_methods, digits=3),
    )
    report.files["dice_boxplot"] = dice_boxplot(dice, mri_methods, report.out / "dice_boxplot.png")


def _ground_truth_experiment(report: _Report, outputs: Outputs, subjects: list[_Subject]) -> None:
    methods = list(outputs)
    truth = _ground_truth_cases(outputs, subjects)
    report.cases["ground_truth"] = truth
    keys = ["modality", "metric", "region"]
    summary = paired_summary(truth, "value", keys, "subject", report.reference, methods)
    report.summaries["ground_truth"] = summary
    report.add_table(
        "ground_truth",
        "## Synthetic ground truth: PSNR (dB) and SSIM on slices with metal "
        "(overall: all but metal; near: within 30 mm of the implant; higher is better)\n",
        markdown_table(summary, keys, methods, digits=3),
    )


def _write_report(
    report: _Report,
    outputs: Outputs,
    subjects: list[_Subject],
    split: str,
    location: str,
) -> None:
    """Case and summary CSVs, the comparison grid, report.md and summary.json."""
    out, files, methods = report.out, report.files, list(outputs)
    for name, frame in report.cases.items():
        files[f"{name}_cases.csv"] = _write_csv(out / f"{name}_cases.csv", frame)
        files[f"{name}_summary.csv"] = _write_csv(
            out / f"{name}_summary.csv", report.summaries[name]
        )
    files["comparison"] = comparison_grid(outputs, subjects, methods, out / "comparison.png")
    report.sections.append(
        "## Figures\n\n![sigma_CT](sigma_ct_boxplot.png)\n\n"
        + ("![Dice](dice_boxplot.png)\n\n" if "dice_boxplot" in files else "")
        + "![comparison](comparison.png)\n"
    )
    files["report"] = write_text_atomic(out / "report.md", "\n".join(report.sections))
    summary_json = {
        "reference": report.reference,
        "methods": methods,
        "subjects": [s.name for s in subjects],
        "split": split,
        "data": location,
        "summaries": {
            name: json.loads(frame.to_json(orient="records"))
            for name, frame in report.summaries.items()
        },
    }
    files["summary.json"] = write_text_atomic(
        out / "summary.json", json.dumps(summary_json, indent=2)
    )


def evaluate(
    data: str | os.PathLike[str] | SliceDataset,
    models: Mapping[str, torch.nn.Module | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    config: EvaluationConfig | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Run the protocol (module doc) for `models` (label or path -> MADN or checkpoint path)."""
    config = config or EvaluationConfig()
    dataset = data if isinstance(data, SliceDataset) else SliceDataset(data)
    device = resolve_device(config.device)
    nets = _load_models(models, dataset, device)
    subjects = _test_subjects(dataset, config.split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outputs = _run_methods(subjects, nets, config, device, progress)
    report = _Report(out, _reference(nets))
    report.sections = [
        f"# Evaluation on {len(subjects)} implanted {config.split} subject(s) of "
        f"{dataset.location}\n",
        f"Reference for the paired two-tailed t-tests: **{report.reference}**; `*`: p < 0.05; "
        "`†`: p < 0.05 after Holm's correction over the table's tests (the `_summary.csv` "
        "files hold p, p_holm and the paired effect size d_z).\n",
    ]
    _sigma_experiment(report, outputs, subjects)
    if config.dice:
        _dice_experiment(report, outputs, subjects, config, progress)
    if dataset.has_ground_truth:
        _ground_truth_experiment(report, outputs, subjects)
    _write_report(report, outputs, subjects, config.split, dataset.location)
    methods = list(outputs)
    return EvaluationResult(
        out, report.reference, methods, report.summaries, report.cases, report.files
    )
