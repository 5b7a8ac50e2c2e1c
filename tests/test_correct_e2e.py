"""bench/correct_e2e.py: `madn correct` on real synthesized volumes, scored against NMAR."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from conftest import bench_module

from pipelines.data.manifest import read_manifest


@pytest.mark.parametrize("mask", [False, True])
def test_scores_correct_against_no_mar_and_nmar(
    trained_run: Path,
    synth_manifest: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mask: bool,
) -> None:
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    synth = Path(entry.files["ct"]).parents[1]
    argv = ["correct_e2e.py", str(trained_run / "last.ckpt"), str(synth), entry.subject_id]
    argv += ["--out", str(tmp_path)] + (["--metal-mask"] if mask else [])
    monkeypatch.setattr(sys, "argv", argv)
    assert bench_module("correct_e2e").main() == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    found = re.search(
        r"over (\d+) slices: No MAR ([\d.]+) HU, NMAR ([\d.]+) HU, NMAR without a mask "
        r"([\d.]+) HU, madn correct ([\d.]+) HU",
        line,
    )
    assert found, line
    slices, raw, reference, unmasked = int(found[1]), *map(float, found.group(2, 3, 4))
    assert slices >= 1 and float(found[5]) > 0
    assert reference < raw  # NMAR with the true mask beats the corrupted input near the metal
    assert unmasked < raw  # so does NMAR with the metal segmented from the CT
    assert (tmp_path / entry.subject_id / "ct_corrected.nii.gz").exists()
