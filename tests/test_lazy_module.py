"""The evaluation (with its LI and NMAR baselines) runs without SimpleITK, nibabel and xraydb,
as on a GPU machine that has torch but not them; a missing optional module fails on use with
one line that names it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.baselines.mar import li_mar, nmar
from pipelines.io.lazy_module import LazyModule

ROOT = Path(__file__).resolve().parents[1]

WITHOUT_OPTIONAL_MODULES = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"SimpleITK", "nibabel", "xraydb", "mlflow", "ray"}:
            raise ImportError("not installed: " + name)
sys.meta_path.insert(0, Refuse())
import numpy as np
import pipelines.evaluation.evaluate
from pipelines.baselines.mar import li_mar, nmar
from tests.test_lazy_module import phantom
ct = phantom()
print(" ".join(str(float(method(ct, ct > 2500, 2.0).sum())) for method in (li_mar, nmar)))
"""


def phantom() -> np.ndarray:
    """(48, 48) HU: a water square in air with a 4-pixel metal insert."""
    ct = np.full((48, 48), -1000.0, np.float32)
    ct[8:40, 8:40] = 40.0
    ct[20:24, 20:24] = 3000.0
    return ct


def test_evaluation_and_baselines_run_without_simpleitk_nibabel_or_xraydb() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPTIONAL_MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ct = phantom()
    expected = [float(method(ct, ct > 2500, 2.0).sum()) for method in (li_mar, nmar)]
    measured = [float(v) for v in result.stdout.split()]
    assert measured == pytest.approx(expected, rel=1e-6)
    assert expected[0] != pytest.approx(float(ct.sum()), rel=1e-3)  # the baselines changed it


def test_a_missing_module_fails_on_first_use_naming_it_and_its_purpose() -> None:
    module = LazyModule("madn_no_such_module", "the frobnicator")
    with pytest.raises(ImportError, match="the frobnicator needs the Python package 'madn_no_"):
        module.anything  # noqa: B018


def test_a_present_module_behaves_like_the_module() -> None:
    import math

    assert LazyModule("math", "arithmetic").sqrt(9.0) == math.sqrt(9.0)
