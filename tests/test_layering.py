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


def _stage_imports() -> list[tuple[str, str, str]]:
    """(file, its stage, imported stage) for every `pipelines.<stage>` import in pipelines/,
    top-level or inside functions."""
    import ast
    from pathlib import Path

    import pipelines

    root = Path(pipelines.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                pieces = name.split(".")
                if len(pieces) > 1 and pieces[0] == "pipelines":
                    found.append((str(path.relative_to(root)), parts[0], pieces[1]))
    return found


def test_pipeline_stages_import_only_earlier_stages() -> None:
    from pipelines import STAGES

    imports = _stage_imports()
    assert imports, "found no pipelines.* imports to check"
    upward = [
        f"{file} ({stage}) imports pipelines.{target}"
        for file, stage, target in imports
        if target not in STAGES or STAGES.index(target) > STAGES.index(stage)
    ]
    assert not upward, "stages must import only earlier stages: " + "; ".join(upward)


def test_every_stage_is_a_documented_package() -> None:
    from pathlib import Path

    import pipelines

    root = Path(pipelines.__file__).parent
    packages = sorted(p.parent.name for p in root.glob("*/__init__.py"))
    assert packages == sorted(pipelines.STAGES)
    for stage in pipelines.STAGES:
        assert len((root / stage / "__init__.py").read_text().strip()) > 80, stage
    assert not list(root.glob("*.py"))[1:], "only __init__.py lives at the top of pipelines/"
