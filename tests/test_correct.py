"""`madn correct`: volumes keep their geometry; mismatched models and bad files are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pipelines.data.manifest import read_manifest
from tune.cli import main


def _oblique_copy(path: Path, out: Path) -> Path:
    """The volume with a flipped, permuted direction, anisotropic spacing and an offset origin."""
    image = sitk.ReadImage(str(path))
    image.SetSpacing((1.7, 2.1, 3.3))
    image.SetOrigin((-40.0, 12.5, 300.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(out))
    return out


def test_correct_preserves_geometry(
    trained_run: Path, synth_manifest: Path, tmp_path: Path
) -> None:
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    ct = _oblique_copy(entry.files["ct"], tmp_path / "ct.nii.gz")
    mri = _oblique_copy(entry.files["mri"], tmp_path / "mri.nii.gz")
    code = main(
        [
            "correct",
            "--model",
            str(trained_run / "last.ckpt"),
            "--ct",
            str(ct),
            "--mri",
            str(mri),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    for name, source in (("ct", ct), ("mri", mri)):
        original = sitk.ReadImage(str(source))
        result = sitk.ReadImage(str(tmp_path / "out" / f"{name}_corrected.nii.gz"))
        assert result.GetSize() == original.GetSize()
        np.testing.assert_allclose(result.GetSpacing(), original.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(result.GetOrigin(), original.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(result.GetDirection(), original.GetDirection(), atol=1e-6)
        assert np.isfinite(sitk.GetArrayFromImage(result)).all()
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "ct_corrected.nii.gz")))
    assert hu.min() >= -1001 and hu.max() > 2000  # HU, metal kept


def test_correct_refuses_mismatch_and_bad_files(
    trained_run: Path, synth_manifest: Path, tmp_path: Path, capsys
) -> None:
    entry = read_manifest(synth_manifest)[0]
    model = str(trained_run / "last.ckpt")
    assert (
        main(["correct", "--model", model, "--ct", str(entry.files["ct"]), "--out", str(tmp_path)])
        == 2
    )
    assert "madn model that takes CT+MRI: pass --ct and --mri" in capsys.readouterr().err
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes((trained_run / "last.ckpt").read_bytes()[:1000])
    args = [
        "--ct",
        str(entry.files["ct"]),
        "--mri",
        str(entry.files["mri"]),
        "--out",
        str(tmp_path),
    ]
    assert main(["correct", "--model", str(broken), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("madn correct: error:")
        and "broken.ckpt" in err
        and len(err.splitlines()) == 1
    )
    assert main(["correct", "--model", str(tmp_path / "none.ckpt"), *args]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.glob("*_corrected.nii.gz"))
