"""`madn correct`: volumes keep their geometry; mismatched models and bad files are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
    lowest = float(sitk.GetArrayFromImage(sitk.ReadImage(str(ct))).min())
    # HU, metal kept; metal-free slices pass through with the scan's own noise in the air
    assert hu.min() >= min(-1001.0, lowest - 1.0) and hu.max() > 2000


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


def _correct(model: Path, ct: Path, mri: Path, out: Path, *extra: str) -> int:
    args = ["correct", "--model", str(model), "--ct", str(ct), "--mri", str(mri)]
    return main([*args, "--out", str(out), "--device", "cpu", *extra])


def test_checkpoint_records_spacing_and_correct_works_at_it(
    trained_run: Path, dataset_path: Path, synth_manifest: Path, tmp_path: Path
) -> None:
    from madn_core.checkpoint import load_model
    from pipelines.data.dataset import SliceDataset
    from pipelines.data.volumes import read_volume
    from pipelines.inference.correct import model_grid

    model = load_model(trained_run / "last.ckpt")
    dataset = SliceDataset(dataset_path)
    spacing = float(dataset.read([0], ["spacing_x"])["spacing_x"][0])
    assert model.config.data.spacing_mm == pytest.approx(spacing)
    assert model.config.data.ct_window_hu == (-1000.0, 2000.0)
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    fine = _respaced(entry.files["ct"], tmp_path / "fine.nii.gz", spacing / 2)
    grid = model_grid(read_volume(fine, "ct"), model.config)
    assert grid.GetSpacing()[0] == pytest.approx(spacing)  # resampled to the model's spacing
    assert grid.GetSize()[0] == pytest.approx(32 / 2, abs=1)  # whole field of view, not 32 px


def _respaced(path: Path, out: Path, spacing: float, slices: slice | None = None) -> Path:
    image = sitk.ReadImage(str(path))
    if slices is not None:
        image = image[:, :, slices]
    image.SetSpacing((spacing, spacing, image.GetSpacing()[2]))
    sitk.WriteImage(image, str(out))
    return out


def test_one_slice_volume_is_corrected(
    trained_run: Path, synth_manifest: Path, tmp_path: Path
) -> None:
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    metal = sitk.GetArrayFromImage(sitk.ReadImage(str(entry.files["ct"])))
    k = int(np.argmax((metal > 2500).reshape(len(metal), -1).sum(axis=1)))
    ct = _respaced(entry.files["ct"], tmp_path / "ct.nii.gz", 12.0, slice(k, k + 1))
    mri = _respaced(entry.files["mri"], tmp_path / "mri.nii.gz", 12.0, slice(k, k + 1))
    assert _correct(trained_run / "last.ckpt", ct, mri, tmp_path / "out") == 0
    result = sitk.ReadImage(str(tmp_path / "out" / "ct_corrected.nii.gz"))
    assert result.GetSize() == (32, 32, 1)
    before = sitk.GetArrayFromImage(sitk.ReadImage(str(ct)))
    assert not np.array_equal(sitk.GetArrayFromImage(result), before)  # it was corrected


def test_metal_free_slices_pass_through_unless_all_slices(
    trained_run: Path, synth_manifest: Path, tmp_path: Path, capsys
) -> None:
    entry = next(e for e in read_manifest(synth_manifest) if not e.has_metal)
    ct, mri = entry.files["ct"], entry.files["mri"]
    assert _correct(trained_run / "last.ckpt", ct, mri, tmp_path / "default") == 0
    assert "corrected 0 of" in capsys.readouterr().out
    for name, source in (("ct", ct), ("mri", mri)):
        out = sitk.ReadImage(str(tmp_path / "default" / f"{name}_corrected.nii.gz"))
        original = sitk.GetArrayFromImage(sitk.Cast(sitk.ReadImage(str(source)), sitk.sitkFloat32))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(out), original)
    assert _correct(trained_run / "last.ckpt", ct, mri, tmp_path / "all", "--all-slices") == 0
    changed = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "all" / "ct_corrected.nii.gz")))
    original = sitk.GetArrayFromImage(sitk.Cast(sitk.ReadImage(str(ct)), sitk.sitkFloat32))
    assert not np.array_equal(changed, original)


def _nnunet_folder(synth_manifest: Path, folder: Path, cases: int) -> list[str]:
    """`cases` implanted subjects as CASE_0000.nii.gz (CT) / CASE_0001.nii.gz (MRI) files."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for entry in [e for e in read_manifest(synth_manifest) if e.has_metal][:cases]:
        name = f"hip_{entry.subject_id.replace('-', '')}"
        shutil.copy(entry.files["ct"], folder / f"{name}_0000.nii.gz")
        shutil.copy(entry.files["mri"], folder / f"{name}_0001.nii.gz")
        names.append(name)
    return names


def test_folder_of_cases_like_nnunet(
    trained_run: Path, synth_manifest: Path, tmp_path: Path, capsys
) -> None:
    names = _nnunet_folder(synth_manifest, tmp_path / "in", 3)
    (tmp_path / "in" / "broken_0000.nii.gz").write_bytes(b"not a nifti")
    (tmp_path / "in" / "broken_0001.nii.gz").write_bytes(b"not a nifti")
    args = ["correct", "--model", str(trained_run / "last.ckpt"), "--device", "cpu"]
    folder = ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    assert main([*args, *folder, "--register", "rigid"]) == 1  # one case failed
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("madn correct: error: case broken")
    assert "3 cases corrected, 0 skipped (done), 1 failed" in captured.out
    for name in names:
        for code in ("0000", "0001"):
            result = sitk.ReadImage(str(tmp_path / "out" / f"{name}_{code}.nii.gz"))
            source = sitk.ReadImage(str(tmp_path / "in" / f"{name}_0000.nii.gz"))
            assert result.GetSize() == source.GetSize()  # the MRI is on the CT's grid
    (tmp_path / "in" / "broken_0000.nii.gz").unlink()
    (tmp_path / "in" / "broken_0001.nii.gz").unlink()
    assert main([*args, *folder, "--continue"]) == 0
    assert "0 cases corrected, 3 skipped (done), 0 failed" in capsys.readouterr().out


def test_folder_and_single_case_flags_do_not_mix(trained_run: Path, tmp_path: Path, capsys) -> None:
    model = ["correct", "--model", str(trained_run / "last.ckpt")]
    assert main([*model, "-i", str(tmp_path), "-o", str(tmp_path), "--ct", "x.nii.gz"]) == 2
    assert "either -i/-o" in capsys.readouterr().err
    assert main([*model, "-i", str(tmp_path / "none"), "-o", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*model, "-i", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "holds no cases" in capsys.readouterr().err


def test_a_model_trained_after_nmar_gets_nmar_first(
    trained_run: Path, synth_manifest: Path
) -> None:
    """`data.ct_prior` "nmar": the CT slices with metal go through NMAR on the model grid before
    the network; metal-free slices and prior "none" are left alone."""
    from madn_core.checkpoint import load_model
    from madn_core.model import MADN
    from pipelines.baselines.mar import nmar
    from pipelines.data.volumes import resample
    from pipelines.inference.correct import _with_ct_prior, correct_images, model_grid

    plain = load_model(trained_run / "last.ckpt").eval()
    after_nmar = MADN(plain.config.with_overrides({"data.ct_prior": "nmar"}))
    after_nmar.load_state_dict(plain.state_dict())
    after_nmar.eval()
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    images = {m: sitk.ReadImage(str(entry.files[m])) for m in ("ct", "mri")}
    grid = model_grid(images["ct"], plain.config)
    hu = resample(images["ct"], grid, default=-1000.0)
    rows = (hu > 2500).reshape(len(hu), -1).any(axis=1)
    assert rows.any() and (~rows).any()
    assert _with_ct_prior(hu, None, grid, plain.config) is hu
    prior = _with_ct_prior(hu, None, grid, after_nmar.config)
    np.testing.assert_array_equal(prior[~rows], hu[~rows])
    expected = nmar(hu[rows], hu[rows] > 2500, pixel_mm=float(grid.GetSpacing()[0]))
    np.testing.assert_allclose(prior[rows], expected, atol=1e-3)
    ct_plain = correct_images(plain, images, progress=False)[0]["ct"]
    ct_prior = correct_images(after_nmar, images, progress=False)[0]["ct"]
    metal_rows = (sitk.GetArrayFromImage(images["ct"]) > 2500).reshape(len(ct_plain), -1).any(1)
    assert not np.allclose(ct_plain[metal_rows], ct_prior[metal_rows])
    np.testing.assert_array_equal(ct_plain[~metal_rows], ct_prior[~metal_rows])
    # a given metal mask replaces the threshold for NMAR's metal trace
    core = hu > 6000
    given = _with_ct_prior(hu, core, grid, after_nmar.config)
    assert not np.allclose(given[rows], prior[rows])


def test_metal_mask_option(trained_run: Path, synth_manifest: Path, tmp_path: Path, capsys) -> None:
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    ct, mri, mask = entry.files["ct"], entry.files["mri"], entry.files["metal_mask"]
    model = trained_run / "last.ckpt"
    assert _correct(model, ct, mri, tmp_path / "ok", "--metal-mask", str(mask)) == 0
    assert (tmp_path / "ok" / "ct_corrected.nii.gz").exists()
    small = tmp_path / "small.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(mask))[:16], str(small))
    assert _correct(model, ct, mri, tmp_path / "bad", "--metal-mask", str(small)) == 2
    error = capsys.readouterr().err
    assert "small.nii.gz: size (16, 32, 8), expected the scan's (32, 32, 8)" in error
    # the implant keeps its HU; the bright rim it blooms into (above the window) is corrected
    source = sitk.GetArrayFromImage(sitk.ReadImage(str(ct)))
    implant = sitk.GetArrayFromImage(sitk.ReadImage(str(mask))) > 0
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ok" / "ct_corrected.nii.gz")))
    rim = (source > 2000) & ~implant
    assert rim.any()
    np.testing.assert_array_equal(out[implant], source[implant])
    assert (out[rim] <= 2000.5).all()
    empty = tmp_path / "empty.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(mask)) * 0, str(empty))
    assert _correct(model, ct, mri, tmp_path / "bad", "--metal-mask", str(empty)) == 2
    assert "empty.nii.gz: no metal voxel" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "ct_corrected.nii.gz").exists()


def test_without_a_mask_only_the_segmented_implant_keeps_its_hu(
    trained_run: Path, synth_manifest: Path, tmp_path: Path
) -> None:
    from pipelines.baselines.metal import segment_metal

    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    image = sitk.ReadImage(str(entry.files["ct"]))
    source = sitk.GetArrayFromImage(image).astype(np.float32)
    implant = segment_metal(source)
    source[implant] = 8000.0  # a titanium implant, and beside it one 2600 HU rim voxel a slice
    rim = np.zeros_like(implant)
    for z in np.flatnonzero(implant.any(axis=(1, 2))):
        row, column = max(np.argwhere(implant[z]), key=lambda pixel: pixel[1])
        rim[z, row, column + 1] = True  # right of the implant's rightmost voxel
    source[rim] = 2600.0  # above METAL_HU, below half the implant's median
    assert rim.any() and np.array_equal(segment_metal(source), implant)
    written = sitk.GetImageFromArray(source)
    written.CopyInformation(image)
    sitk.WriteImage(written, str(tmp_path / "ct.nii.gz"))
    mri = entry.files["mri"]
    assert _correct(trained_run / "last.ckpt", tmp_path / "ct.nii.gz", mri, tmp_path) == 0
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ct_corrected.nii.gz")))
    np.testing.assert_array_equal(out[implant], source[implant])
    assert (out[rim] <= 2000.5).all()  # the rim (above METAL_HU) takes the network's output


def test_a_metal_mask_also_chooses_the_slices_left_alone(
    trained_run: Path, synth_manifest: Path, tmp_path: Path
) -> None:
    entry = next(e for e in read_manifest(synth_manifest) if e.has_metal)
    ct, mri = entry.files["ct"], entry.files["mri"]
    mask = sitk.ReadImage(str(entry.files["metal_mask"]))
    metal = sitk.GetArrayFromImage(mask) > 0
    with_metal = np.flatnonzero(metal.reshape(len(metal), -1).any(axis=1))
    assert len(with_metal) >= 2
    partial = metal.copy()
    partial[with_metal[1:]] = False  # the mask says: metal in the first of them only
    given = sitk.GetImageFromArray(partial.astype(np.uint8))
    given.CopyInformation(mask)
    sitk.WriteImage(given, str(tmp_path / "partial.nii.gz"))
    argv = ("--metal-mask", str(tmp_path / "partial.nii.gz"))
    assert _correct(trained_run / "last.ckpt", ct, mri, tmp_path / "out", *argv) == 0
    source = sitk.GetArrayFromImage(sitk.Cast(sitk.ReadImage(str(ct)), sitk.sitkFloat32))
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "ct_corrected.nii.gz")))
    untouched = with_metal[1:]
    assert (source[untouched] > 2500).any()  # metal by the threshold, not by the mask
    np.testing.assert_array_equal(out[untouched], source[untouched])
    assert not np.array_equal(out[with_metal[0]], source[with_metal[0]])
