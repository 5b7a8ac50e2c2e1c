"""The `madn` console script, run as a user runs it."""

import subprocess
import sys
from pathlib import Path

import pytest

from tune.cli import main

MADN = [sys.executable, "-m", "tune.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MADN, *args], capture_output=True, text=True, timeout=300)


def exit_code(*args: str) -> int | str | None:
    """`madn ARGS` in this process (the console script is `main`; argparse's own errors exit
    through SystemExit), for the many bad-input cases; its own process is tested separately."""
    try:
        return main(list(args))
    except SystemExit as exit_:
        return exit_.code


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
    assert run("demo", "--help").returncode == 0


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    """synthesize -> ingest -> sweep -> promote -> report, on embedded defaults (tiny sizes)."""
    from mlflow import MlflowClient

    args = ["--subjects", "6", "--size", "32", "--slices", "8", "--trials", "3", "--epochs", "1"]
    result = subprocess.run(
        [*MADN, "demo", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for step in ("[1/5] synthesize", "[2/5] ingest", "[3/5] sweep", "[4/5] promote", "[5/5]"):
        assert step in result.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout
    report = next((tmp_path / "report").glob("demo-*/report.md"))
    text = report.read_text()
    assert "multichannel (baseline)" in text and "lncc" in text and "nmi" in text
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = client.get_model_version_by_alias("madn-demo", "challenger")
    assert str(version.version) == "1"
    # the gate's outcome: champion exactly when the test score beats No MAR
    beats_nomar = float(version.tags["nomar_gain_db"]) > 0
    crowned = "champion" in client.get_registered_model("madn-demo").aliases
    assert crowned == beats_nomar == (version.tags["decision"] == "champion")
    assert ("-> champion" in result.stdout) == crowned
    if not crowned:
        assert "challenger only: test score" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("demo", "--size", "30"), "madn demo: error: --size must be >= 32 and divisible by 4"),
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
def test_bad_input_is_one_line_and_nonzero(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(*args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.strip().splitlines()[-1].count("error") == 1


def test_synth_writes_manifest_and_figure(tmp_path: Path) -> None:
    args = ("synth", "--out", str(tmp_path), "--subjects", "2", "--size", "64", "--slices", "2")
    result = run(*args, "--figure", str(tmp_path / "grid.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "manifest.csv").read_text().count("\n") == 3
    assert (tmp_path / "grid.png").stat().st_size > 5000


@pytest.mark.parametrize(("value", "traceback"), [("0", False), ("", False), ("1", True)])
def test_traceback_only_when_asked(
    value: str, traceback: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MADN_TRACEBACK", value)
    assert exit_code("synth", "--out", "/tmp/x", "--subjects", "-1") == 2
    assert ("Traceback" in capsys.readouterr().err) == traceback


def test_bad_input_from_the_console_script_is_one_line() -> None:
    """The installed `madn` process itself: exit status 2 and one line on stderr."""
    result = run("synth", "--out", "/tmp/x", "--subjects", "-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "madn synth: error: --subjects must be >= 1, got -1"
    ]
