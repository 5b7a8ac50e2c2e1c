"""The CT prior: a classical MAR (LI or NMAR) applied to the CT before the network sees it.

A model trained with a prior (`DataConfig.ct_prior`, "li" or "nmar"; docs/model.md, ablation
15) learns to correct what that method leaves. `madn ingest --ct-prior nmar` stores the prior's
output as an extra image column, `ct_prior`, beside the raw `ct`: slices with metal went
through the method (at their own in-plane spacing, with their metal mask), slices without metal
are copies. Training reads `ct_prior` as the model's CT input; validation, `madn evaluate` and
the promotion gate keep `ct` as "No MAR", so every gain is over the raw input and the LI and
NMAR rows are those of the raw CT, as on a dataset without a prior. A model whose prior a
dataset does not store gets it computed on the fly (`model_ct`).
"""

from __future__ import annotations

import numpy as np

from madn_core.config import CT_PRIORS
from pipelines.baselines.mar import apply_ct_prior
from pipelines.data.dataset import SliceDataset
from pipelines.data.intensity import hu_to_unit, unit_to_hu
from pipelines.data.shards import PRIOR_COLUMN


class PriorError(ValueError):
    """A dataset's CT prior and its columns do not fit together."""


def check_prior(prior: str, what: str = "--ct-prior") -> str:
    """`prior` itself when it is one of CT_PRIORS, else a one-line error naming `what`."""
    if prior not in CT_PRIORS:
        raise PriorError(f"{what} {prior!r}: expected one of {', '.join(CT_PRIORS)}")
    return prior


def prior_of_slices(
    prior: str,
    ct: np.ndarray,
    metal: np.ndarray,
    spacing_mm: np.ndarray,
    window: tuple[float, float],
) -> np.ndarray:
    """(N, H, W) CT in [-1, 1] (HU `window`) -> a float32 copy whose slices with metal
    (`metal`: (N, H, W) bool) went through `prior`, one call per in-plane spacing
    (`spacing_mm`: (N,) mm); slices without metal, and every slice for prior "none", are
    returned unchanged."""
    out = np.array(ct, dtype=np.float32)
    rows = metal.reshape(len(out), -1).any(axis=1)
    if check_prior(prior, "CT prior") == "none" or not rows.any():
        return out
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    for value in np.unique(spacing[rows]):
        chosen = rows & (spacing == value)
        hu = unit_to_hu(out[chosen], *window)
        fixed = apply_ct_prior(prior, hu, metal[chosen], float(value))
        out[chosen] = np.clip(hu_to_unit(fixed, *window), -1.0, 1.0)
    return out


def stored_prior(dataset: SliceDataset) -> str:
    """The prior a dataset stores in its `ct_prior` column ("none": no
    column). A dataset whose dataset.json names a prior but has no such column is refused: an
    older bench/prior_dataset.py replaced its `ct` column, so it has no raw CT for No MAR."""
    prior = str(dataset.info.get("ct_prior", "none"))
    if prior != "none" and PRIOR_COLUMN not in dataset.columns:
        raise PriorError(
            f"{dataset.display}: dataset.json names CT prior {prior!r} but the shards have no "
            f"{PRIOR_COLUMN} column (its ct column is the prior's output, with no raw CT "
            f"beside it); re-create it with `madn ingest --ct-prior {prior}`"
        )
    return prior


def model_ct(dataset: SliceDataset, prior: str, data: dict[str, np.ndarray]) -> np.ndarray:
    """The (N, H, W) CT in [-1, 1] a model with `prior` sees for rows `data` read from
    `dataset`: `ct` for prior "none", the stored `ct_prior` column when the dataset stores
    this prior, else the prior computed now. `data` holds ct, metal_mask, spacing_x, ct_min,
    ct_max (and ct_prior when stored)."""
    if prior == "none":
        return data["ct"]
    if stored_prior(dataset) == prior:
        return data[PRIOR_COLUMN]
    window = (float(data["ct_min"][0]), float(data["ct_max"][0]))
    return prior_of_slices(prior, data["ct"], data["metal_mask"] > 0, data["spacing_x"], window)


def columns_for_prior(dataset: SliceDataset, prior: str) -> list[str]:
    """The extra columns `model_ct` needs besides ct, metal_mask, spacing_x, ct_min, ct_max."""
    return [PRIOR_COLUMN] if prior != "none" and stored_prior(dataset) == prior else []
