"""The `madn` console script, run as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

MADN = [sys.executable, "-m", "tune.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MADN, *args], capture_output=True, text=True, timeout=300)


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
    assert run("demo", "--help").returncode == 0


def test_demo_trains_and_writes_results(tmp_path: Path) -> None:
    result = run("demo", "--out", str(tmp_path), "--epochs", "1", "--size", "32", "--examples", "8")
    assert result.returncode == 0, result.stderr
    assert "val/psnr_ct" in result.stdout
    history = json.loads((tmp_path / "metrics.json").read_text())
    assert len(history) == 1 and history[0]["val/psnr_ct"] > 0
    assert (tmp_path / "samples.png").stat().st_size > 1000
    assert (tmp_path / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("demo", "--size", "30"), "madn demo: error: --size must be divisible by 4, got 30"),
        (("demo", "--epochs", "0"), "must be a positive integer, got 0"),
        (
            ("synth", "--out", "/tmp/x", "--subjects", "-1"),
            "madn synth: error: --subjects must be >= 1, got -1",
        ),
        (
            ("synth", "--out", "/tmp/x", "--metal-fraction", "1.5"),
            "--metal-fraction must be in [0, 1], got 1.5",
        ),
        (
            ("synth", "--out", "/tmp/x", "--size", "-8"),
            "--size must be >= 32 and divisible by 4, got -8",
        ),
        (
            ("synth", "--out", "/proc/madn-nope"),
            "madn synth: error: cannot write to output folder /proc/madn-nope",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.strip().splitlines()[-1].count("error") == 1


def test_synth_writes_manifest_and_figure(tmp_path: Path) -> None:
    args = ("synth", "--out", str(tmp_path), "--subjects", "2", "--size", "64", "--slices", "2")
    result = run(*args, "--figure", str(tmp_path / "grid.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "manifest.csv").read_text().count("\n") == 3
    assert (tmp_path / "grid.png").stat().st_size > 5000
