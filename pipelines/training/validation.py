"""Validation metrics of a MAR model on a dataset split, as `madn train` logs them every epoch.

Computed on the split's slices with metal (at most `max_slices`, in file order), all names
prefixed `val/`:
- `psnr_ct`, `ssim_ct`, `psnr_mri`, `ssim_mri`: corrected vs ground truth (when the dataset has
  it), on images in [-1, 1] (data range 2), over every pixel but the metal, as `madn evaluate`
  and MAR papers measure "overall" (the metal's own pixels are clipped in the input and say
  nothing about artefacts; counting them once made val/score reward changes inside the implant
  that the test table never sees); `psnr_ct_near`, `psnr_mri_near`: the same inside a band of
  NEAR_MM around the implant (metal excluded). `nomar/...`: the same for the
  uncorrected input, the baseline each epoch is compared with. A model trained after a
  classical MAR (`ct_prior`, pipelines.data.ct_prior) gets the prior's CT as its input, but
  `nomar/` stays the raw CT: its gains include the prior's. `prior/...` then gives the CT
  metrics of the prior's output alone, the line the network has to stay above.
- `sigma_ct_gmax`, `..._gmed`, `..._gmin`, `..._tfl`: standard deviation of the corrected CT in
  HU inside each labelled muscle (both sides; slices with >= MIN_MUSCLE_PIXELS), mean over slices;
  `sigma_ct`: their mean. `nomar/sigma_ct...`: the same for the input.
- `abs_sim`: mean |LNCC| (sigma SIM_SIGMA_MM) between the output CT and output MRI; a single-
  modality model is paired with the other modality's input.
- `score`, the objective a sweep maximises, in dB, comparable across variants:
  with ground truth, the mean over CT and MRI of the PSNR gain over No MAR (a modality a model
  does not correct gains 0 dB); without ground truth, the CT muscle-noise reduction
  20 log10(sigma_nomar / sigma_corrected).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from madn_core.metrics import psnr, ssim
from madn_core.model import MADN
from madn_core.similarity import lncc
from pipelines.data.ct_prior import columns_for_prior, model_ct
from pipelines.data.dataset import SliceDataset
from pipelines.data.intensity import unit_to_hu

MUSCLES = {1: "gmax", 2: "gmed", 3: "gmin", 4: "tfl"}
NEAR_MM = 30.0
MIN_MUSCLE_PIXELS = 20
SIM_SIGMA_MM = 7.5
SAMPLE_ROWS = 3  # slices (those with most metal) in the sample grid


def correct_batches(
    model: MADN,
    images: np.ndarray,
    batch_size: int = 16,
    device: torch.device | None = None,
    metal: np.ndarray | None = None,
) -> np.ndarray:
    """Apply `model.correct` to (N, C, H, W) images in [-1, 1] in batches; float32 numpy out.
    `metal`: (N, H, W) bool metal masks for the implant band (`network.correction_band_mm`);
    without them the model finds metal in its CT channel."""
    device = device or next(model.parameters()).device
    out = np.empty(images.shape, np.float32)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            mask = None
            if metal is not None:
                mask = torch.from_numpy(np.ascontiguousarray(metal[start : start + batch_size]))
                mask = mask.bool()[:, None].to(device)
            corrected = model.correct(batch.to(device), mask).float().clamp(-1, 1)
            out[start : start + batch_size] = corrected.cpu().numpy()
    model.train(was_training)
    return out


def near_implant_band(metal: np.ndarray, spacing_mm: np.ndarray, band_mm: float) -> np.ndarray:
    """(N, H, W) bool: within band_mm of metal in-plane, metal itself excluded."""
    band = np.zeros(metal.shape, bool)
    for i, (mask, spacing) in enumerate(zip(metal, spacing_mm, strict=True)):
        if mask.any():
            distance = ndimage.distance_transform_edt(~mask) * float(spacing)
            band[i] = (distance > 0) & (distance <= band_mm)
    return band


def muscle_sigmas(
    ct_hu: np.ndarray, labels: np.ndarray, region: np.ndarray | None = None
) -> dict[str, float]:
    """Mean over slices of the HU standard deviation inside each muscle label (NaN if absent).

    ct_hu, labels: (N, H, W); region: optional (N, H, W) bool restricting the muscles (e.g. one
    side of the body)."""
    allowed = np.ones(labels.shape, bool) if region is None else region
    result = {}
    for label, name in MUSCLES.items():
        inside = (labels == label) & allowed
        values = [
            float(image[mask].std())
            for image, mask in zip(ct_hu, inside, strict=True)
            if mask.sum() >= MIN_MUSCLE_PIXELS
        ]
        result[name] = float(np.mean(values)) if values else math.nan
    return result


class Validator:
    """Callable `(model, epoch) -> {"val/...": float}` over a split (see module doc)."""

    def __init__(
        self,
        dataset: SliceDataset,
        channels: Sequence[str],
        split: str = "val",
        max_slices: int = 256,
        batch_size: int = 16,
        subject: str | None = None,
        ct_prior: str = "none",
    ) -> None:
        """`channels`: the modalities the model takes; `ct_prior`: the model's
        `data.ct_prior` (its CT input, read from the dataset or computed)."""
        positions = dataset.select(split=split, has_metal=True, subject=subject)[:max_slices]
        if len(positions) == 0:
            which = f"subject {subject!r} of split {split!r}" if subject else f"split {split!r}"
            raise ValueError(f"{dataset.location}: {which} has no slices with metal to validate on")
        self.channels = tuple(channels)
        self.batch_size = batch_size
        self.ground_truth = dataset.has_ground_truth
        columns = ["ct", "mri", "metal_mask", "labels", "ct_min", "ct_max", "spacing_x"]
        columns += columns_for_prior(dataset, ct_prior)
        if self.ground_truth:
            columns += ["ct_clean", "mri_clean"]
        data = dataset.read(positions, columns)
        self.data = data
        given = {"ct": model_ct(dataset, ct_prior, data), "mri": data["mri"]}
        self.inputs = np.stack([given[c] for c in self.channels], axis=1)
        self.window = (float(data["ct_min"][0]), float(data["ct_max"][0]))
        self.metal = data["metal_mask"] > 0
        self.band = near_implant_band(self.metal, data["spacing_x"], NEAR_MM)
        self.sim_sigma = max(1.0, SIM_SIGMA_MM / float(np.median(data["spacing_x"])))
        self.baseline: dict[str, float] = {}
        self.baseline = self._metrics({"ct": data["ct"], "mri": data["mri"]})
        self.prior_baseline: dict[str, float] = {}
        if ct_prior != "none":
            prior = self._metrics({"ct": given["ct"], "mri": data["mri"]}, changed=("ct",))
            self.prior_baseline = {k: v for k, v in prior.items() if _modality_of(k) == "ct"}
        metal_pixels = self.metal.reshape(len(self.inputs), -1).sum(axis=1)
        self.sample_rows = np.argsort(-metal_pixels)[:SAMPLE_ROWS]  # the most metal first
        self.last_samples: tuple[int, np.ndarray] | None = None  # (epoch, their outputs)

    def _metrics(
        self, output: dict[str, np.ndarray], changed: Sequence[str] = ("ct", "mri")
    ) -> dict[str, float]:
        """The module doc's metrics of `output` ({"ct", "mri"}: (N, H, W) in [-1, 1]). Only the
        `changed` modalities are measured; the others are the input's, so their metrics are
        the baseline's (which must exist unless both are changed)."""
        data = self.data
        metrics = {
            key: value for key, value in self.baseline.items() if _modality_of(key) not in changed
        }
        for modality in changed if self.ground_truth else ():
            pred = torch.from_numpy(output[modality])[:, None]
            target = torch.from_numpy(data[f"{modality}_clean"])[:, None]
            band = torch.from_numpy(self.band)[:, None]
            outside_metal = torch.from_numpy(~self.metal)[:, None]
            metrics[f"psnr_{modality}"] = _finite_mean(psnr(pred, target, 2.0, outside_metal))
            metrics[f"ssim_{modality}"] = _finite_mean(ssim(pred, target, 2.0, outside_metal))
            metrics[f"psnr_{modality}_near"] = _finite_mean(psnr(pred, target, 2.0, band))
        if "ct" in changed:
            sigmas = muscle_sigmas(unit_to_hu(output["ct"], *self.window), data["labels"])
            for name, value in sigmas.items():
                metrics[f"sigma_ct_{name}"] = value
            finite = [v for v in sigmas.values() if math.isfinite(v)]
            metrics["sigma_ct"] = float(np.mean(finite)) if finite else math.nan
        sim = lncc(
            torch.from_numpy(output["ct"])[:, None],
            torch.from_numpy(output["mri"])[:, None],
            sigma=self.sim_sigma,
        )
        metrics["abs_sim"] = float(sim.mean())
        return metrics

    def __call__(self, model: MADN, epoch: int) -> dict[str, float]:
        corrected = correct_batches(model, self.inputs, self.batch_size, metal=self.metal)
        self.last_samples = (epoch, corrected[self.sample_rows])  # for the epoch's grid
        output = {"ct": self.data["ct"], "mri": self.data["mri"]}
        for c, name in enumerate(self.channels):
            output[name] = corrected[:, c]
        metrics = self._metrics(output, changed=self.channels)
        if self.ground_truth:
            gains = [metrics[f"psnr_{m}"] - self.baseline[f"psnr_{m}"] for m in ("ct", "mri")]
            score = float(np.mean(gains))
        else:
            before, after = self.baseline["sigma_ct"], metrics["sigma_ct"]
            score = 20.0 * math.log10(before / after) if before > 0 and after > 0 else math.nan
        metrics["score"] = score
        result = {f"val/{k}": v for k, v in metrics.items()}
        result.update({f"val/nomar/{k}": v for k, v in self.baseline.items()})
        result.update({f"val/prior/{k}": v for k, v in self.prior_baseline.items()})
        return result

    def sample_grid_images(
        self, model: MADN, count: int = SAMPLE_ROWS, epoch: int | None = None
    ) -> dict[str, list[np.ndarray]]:
        """Columns for `save_image_grid`: input, corrected, ground truth; CT then MRI rows, for
        the `count` (at most SAMPLE_ROWS) slices with most metal. With the `epoch` this
        validator last ran at, its outputs of that run are reused instead of running `model`."""
        pick = self.sample_rows[:count]
        if epoch is not None and self.last_samples and self.last_samples[0] == epoch:
            corrected = self.last_samples[1][:count]
        else:
            corrected = correct_batches(
                model, self.inputs[pick], self.batch_size, metal=self.metal[pick]
            )
        columns: dict[str, list[np.ndarray]] = {"input": [], "corrected": []}
        if self.ground_truth:
            columns["ground truth"] = []
        for modality in ("ct", "mri"):
            for row, i in enumerate(pick):
                columns["input"].append(self.data[modality][i])
                if modality in self.channels:
                    image = corrected[row, self.channels.index(modality)]
                else:
                    image = self.data[modality][i]  # not corrected by this variant
                columns["corrected"].append(image)
                if self.ground_truth:
                    columns["ground truth"].append(self.data[f"{modality}_clean"][i])
        return columns


def _modality_of(metric: str) -> str | None:
    """The modality a validation metric measures alone ("ct", "mri"), None for both."""
    if metric.startswith("sigma_ct"):
        return "ct"
    for modality in ("ct", "mri"):
        if metric.startswith((f"psnr_{modality}", f"ssim_{modality}")):
            return modality
    return None


def _finite_mean(values: torch.Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if finite.numel() else math.nan
