"""madn_core imports only torch and numpy; pipelines never imports Ray or MLflow."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        (
            "madn_core",
            ("ray", "mlflow", "pyarrow", "SimpleITK", "optuna", "nibabel", "pipelines", "tune"),
        ),
        ("pipelines", ("ray", "mlflow", "optuna", "tune")),
    ],
)
def test_imports_point_down_only(module: str, forbidden: tuple[str, ...]) -> None:
    code = (
        f"import sys, {module}, pkgutil, importlib\n"
        f"for info in pkgutil.walk_packages({module}.__path__, '{module}.'):\n"
        "    importlib.import_module(info.name)\n"
        f"print(' '.join(m for m in {forbidden!r} if m in sys.modules))"
    )
    leaked = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert leaked.strip() == "", f"importing {module} pulled in: {leaked}"
