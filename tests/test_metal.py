"""Metal segmentation without a mask: the implant down to its half-maximum edge, not its rim."""

import numpy as np
import pytest
from scipy import ndimage

from pipelines.baselines.metal import segment_metal
from pipelines.synth.generate import SynthConfig, simulate_subject


def _dice(found: np.ndarray, truth: np.ndarray) -> float:
    return float(2 * (found & truth).sum() / (found.sum() + truth.sum()))


def _blurred_disc(level_hu: float, radius: float = 6.0, size: int = 48) -> tuple:
    """(HU slice, true disc): a disc of `level_hu` on 40 HU tissue, blurred by 1.5 px."""
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2
    image = np.where(disc, level_hu, 40.0).astype(np.float32)
    return ndimage.gaussian_filter(image, 1.5), disc


def test_half_maximum_edge_beats_the_plain_threshold_on_a_blurred_implant() -> None:
    ct, disc = _blurred_disc(8000.0)
    found, plain = segment_metal(ct), ct > 2500
    assert (plain & ~disc).sum() > 2 * (found & ~disc).sum()  # the rim the threshold takes
    assert _dice(found, disc) > _dice(plain, disc) and _dice(found, disc) > 0.9


def test_each_region_gets_its_own_edge_and_clipped_scans_fall_back_to_the_threshold() -> None:
    titanium, _ = _blurred_disc(6000.0)
    cobalt, _ = _blurred_disc(16000.0)
    both = np.concatenate([titanium, cobalt], axis=1)
    found = segment_metal(both)
    np.testing.assert_array_equal(found[:, :48], segment_metal(titanium))
    np.testing.assert_array_equal(found[:, 48:], segment_metal(cobalt))
    np.testing.assert_array_equal(segment_metal(both, edge_fraction=0.0), both > 2500)


def test_a_clipped_scan_keeps_the_saturated_core_not_the_rim_below_the_clip() -> None:
    ct, disc = _blurred_disc(8000.0)
    clipped = np.minimum(ct, 3071.0)  # a standard 12-bit scanner saturates the implant
    found = segment_metal(clipped)
    np.testing.assert_array_equal(found, clipped >= 3071.0)
    assert found.sum() < (clipped > 2500).sum()
    assert _dice(found, disc) > _dice(clipped > 2500, disc)


def test_regions_never_join_across_slices() -> None:
    bright, _ = _blurred_disc(16000.0)
    dim, _ = _blurred_disc(6000.0)
    volume = np.stack([bright, dim])
    found = segment_metal(volume)
    np.testing.assert_array_equal(found[1], segment_metal(dim))
    assert found[1].sum() > found[0].sum() * 0.5  # not cut at the bright slice's edge
    assert not segment_metal(np.zeros((2, 8, 8))).any()
    with pytest.raises(ValueError, match=r"got shape \(8,\)"):
        segment_metal(np.zeros(8))


def test_closer_to_the_true_metal_than_the_threshold_on_a_simulated_hip() -> None:
    subject = simulate_subject(SynthConfig(subjects=1, size=96, slices=8, seed=3), 0, True)
    ct, truth = subject.volumes["ct"], subject.volumes["metal_mask"].astype(bool)
    found = segment_metal(ct)
    assert _dice(found, truth) > _dice(ct > 2500, truth)
    assert (found & ~truth).sum() < (ct > 2500)[~truth].sum()


def test_the_segmentation_bench_scores_the_true_mask_and_each_fraction(
    synth_manifest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys
    from pathlib import Path

    from conftest import bench_module

    from pipelines.data.manifest import read_manifest

    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    synth = Path(entry.files["ct"]).parents[1]
    argv = ["metal_segmentation.py", str(synth), entry.subject_id, "--fractions", "0,0.5"]
    monkeypatch.setattr(sys, "argv", argv)
    assert bench_module("metal_segmentation").main() == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert [row[0] for row in rows] == ["| true mask", "| edge fraction 0", "| edge fraction 0.5"]
    assert rows[0][1:4] == ["1.000", "1.000", "0"]
    assert float(rows[2][3]) <= float(rows[1][3])  # the edge rule takes no more rim
    assert all(float(row[4].rstrip(" |")) > 0 for row in rows)
    monkeypatch.setattr(sys, "argv", [*argv, "--clip-hu", "3071"])  # a standard-scale scanner
    assert bench_module("metal_segmentation").main() == 0
    clipped = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert len(clipped) == 3 and clipped[0][1:4] == ["1.000", "1.000", "0"]
