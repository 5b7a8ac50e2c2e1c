"""Per-subject paired evidence that a model beats No MAR on a dataset's test split.

For each test subject with implanted slices, the subject's score is the validation score of
`pipelines.training.validation` on that subject's slices alone: with ground truth, the mean
over CT and MRI of the PSNR gain over the uncorrected input, in dB (a modality the model does
not correct gains 0); without it, the CT muscle-noise reduction in dB. The gains are paired by
construction (model and No MAR on the same slices), so the test is a one-sided one-sample
t-test of the per-subject gains against 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from pipelines.data.dataset import SliceDataset, channels_for_variant
from pipelines.training.validation import Validator


@dataclass
class TestEvidence:
    """scores: `test/...` metrics over all test slices with metal; subject_scores: subject id ->
    score in dB; t_statistic, p_value: one-sided paired test that the mean gain is > 0 (NaN
    with fewer than two subjects)."""

    scores: dict[str, float]
    subject_scores: dict[str, float]
    t_statistic: float
    p_value: float

    @property
    def score(self) -> float:
        return self.scores["test/score"]

    def summary(self) -> dict[str, object]:
        """JSON-ready record for MLflow (artifact and tags)."""
        return {
            "test_score_db": self.score,
            "subjects": len(self.subject_scores),
            "subject_scores_db": self.subject_scores,
            "t_statistic": self.t_statistic,
            "p_value_one_sided": self.p_value,
        }


def _validate(model: torch.nn.Module, validator: Validator) -> dict[str, float]:
    metrics = validator(model, 0)
    return {"test/" + k.split("/", 1)[1]: v for k, v in metrics.items()}


def collect_evidence(model: torch.nn.Module, data: str, max_slices: int = 512) -> TestEvidence:
    """Score `model` (eval mode, CPU) on the test split of `data`, overall and per subject."""
    dataset = SliceDataset(data)
    channels = channels_for_variant(model.config.variant)
    prior = model.config.data.ct_prior  # its CT input; No MAR stays the raw CT
    model = model.cpu().eval()
    overall = Validator(dataset, channels, "test", max_slices=max_slices, ct_prior=prior)
    scores = _validate(model, overall)
    subject_scores: dict[str, float] = {}
    for subject in dataset.subjects("test"):
        if len(dataset.select(split="test", has_metal=True, subject=subject)) == 0:
            continue
        validator = Validator(dataset, channels, "test", subject=subject, ct_prior=prior)
        subject_scores[subject] = float(_validate(model, validator)["test/score"])
    gains = np.array([v for v in subject_scores.values() if math.isfinite(v)])
    if len(gains) >= 2 and np.ptp(gains) > 0:
        result = stats.ttest_1samp(gains, 0.0, alternative="greater")
        t_statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        t_statistic = p_value = math.nan
    return TestEvidence(scores, subject_scores, t_statistic, p_value)
