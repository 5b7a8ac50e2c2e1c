"""Files and folders the project writes through temporary names keep the user's umask (tempfile
alone would make them 0600 and 0700, unreadable to other users and workers)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from madn_core.checkpoint import save_checkpoint
from pipelines.io.atomic import write_text_atomic
from pipelines.synth.generate import SynthConfig, synthesize


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_keep_the_umask(umask: int, tmp_path: Path) -> None:
    text = write_text_atomic(tmp_path / "report.md", "# report\n")
    checkpoint = save_checkpoint({"model": {}}, tmp_path / "last.ckpt")
    assert _mode(text) == 0o666 & ~umask
    assert _mode(checkpoint) == 0o666 & ~umask
    config = SynthConfig(subjects=1, metal_fraction=1.0, size=32, slices=4, seed=0)
    synthesize(config, tmp_path / "synth", progress=False)
    subject = next(p for p in (tmp_path / "synth").iterdir() if p.is_dir())
    assert _mode(subject) == 0o777 & ~umask
    assert _mode(tmp_path / "synth" / "manifest.csv") == 0o666 & ~umask
