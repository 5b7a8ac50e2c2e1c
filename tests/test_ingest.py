"""Ingestion: round trip to HU, registration, splits, cache behaviour, bad input, shard format."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import SimpleITK as sitk

from pipelines.data.dataset import SliceDataset
from pipelines.data.ingest import IngestConfig, IngestError, assign_splits, ingest
from pipelines.data.intensity import unit_to_hu, unit_to_mri
from pipelines.data.manifest import SubjectEntry, read_manifest
from pipelines.data.registration import RegistrationConfig, estimation_grid, register
from pipelines.data.volumes import resample
from pipelines.synth.phantom import make_phantom
from pipelines.synth.tissues import TISSUES
from tune.cli import main

NO_REGISTRATION = IngestConfig(size=32, registration=RegistrationConfig(mode="none"))


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_round_trip_recovers_hu_and_mri(dataset_path: Path, synth_manifest: Path) -> None:
    dataset = SliceDataset(dataset_path)
    entries = {e.subject_id: e for e in read_manifest(synth_manifest)}
    implanted = next(s for s in dataset.subjects() if entries[s].has_metal)
    data = dataset.read_subject(
        implanted, ["ct", "mri", "ct_clean", "metal_mask", *["ct_min", "ct_max"]]
    )
    positions = dataset.select(subject=implanted)
    params = dataset.read(positions[:1], ["mri_low", "mri_high", "origin_x", "origin_y"])
    source = sitk.ReadImage(str(entries[implanted].files["ct"]))
    original = sitk.GetArrayFromImage(source).astype(np.float32)
    mri = sitk.GetArrayFromImage(sitk.ReadImage(str(entries[implanted].files["mri"])))
    spacing = source.GetSpacing()
    dy = round((params["origin_y"][0] - source.GetOrigin()[1]) / spacing[1])
    dx = round((params["origin_x"][0] - source.GetOrigin()[0]) / spacing[0])
    z = data["slice_index"]
    window = original[z][:, max(dy, 0) : dy + 32, max(dx, 0) : dx + 32]
    ct_hu = unit_to_hu(data["ct"], -1000.0, 2000.0)[
        :, max(-dy, 0) : max(-dy, 0) + window.shape[1], max(-dx, 0) : max(-dx, 0) + window.shape[2]
    ]
    assert window.size > 0.8 * z.size * 32 * 32
    np.testing.assert_allclose(ct_hu, np.clip(window, -1000, 2000), atol=0.05)
    low, high = float(params["mri_low"][0]), float(params["mri_high"][0])
    mri_back = unit_to_mri(dataset.read_subject(implanted, ["mri"])["mri"], low, high)[
        :, max(-dy, 0) : max(-dy, 0) + window.shape[1], max(-dx, 0) : max(-dx, 0) + window.shape[2]
    ]
    mri_window = mri[z][:, max(dy, 0) : dy + 32, max(dx, 0) : dx + 32]
    inside = (mri_window > low) & (mri_window < high)
    np.testing.assert_allclose(mri_back[inside], mri_window[inside], rtol=1e-4, atol=1e-5)
    assert data["metal_mask"].any() and (data["ct_min"] == -1000).all()


def test_dataset_json_and_splits(dataset_path: Path, synth_manifest: Path) -> None:
    info = json.loads((dataset_path / "dataset.json").read_text())
    dataset = SliceDataset(dataset_path)
    for split in ("train", "val", "test"):
        positions = dataset.select(split=split)
        assert info["counts"][split]["metal"] == int(dataset.index["has_metal"][positions].sum())
        assert set(dataset.subjects(split)) == set(info["splits"][split])
    subjects = [set(info["splits"][s]) for s in ("train", "val", "test")]
    assert not (subjects[0] & subjects[1] or subjects[0] & subjects[2] or subjects[1] & subjects[2])
    assert len(info["splits"]["test"]) == 2 and len(info["splits"]["val"]) == 2
    # both kinds of subject in test, both domains in train
    test_metal = {e.subject_id: e.has_metal for e in read_manifest(synth_manifest)}
    assert {test_metal[s] for s in info["splits"]["test"]} == {True, False}
    assert info["counts"]["train"]["metal"] > 0 and info["counts"]["train"]["clean"] > 0
    assert all(f["sha256"] for s in info["source"]["subjects"] for f in s["files"].values())


def test_splits_are_deterministic_and_validated() -> None:
    entries = [SubjectEntry(f"s{i}", i % 3 == 0, "") for i in range(10)]
    first = assign_splits(entries, 0.2, "0.2", seed=4)
    assert first == assign_splits(entries, 0.2, "0.2", seed=4)
    assert first != assign_splits(entries, 0.2, "0.2", seed=5)
    explicit = assign_splits(entries, 0.0, "s1,s2", seed=0)
    assert {s for s, v in explicit.items() if v == "test"} == {"s1", "s2"}
    with pytest.raises(IngestError, match="unknown subject"):
        assign_splits(entries, 0.2, "s1,zz", seed=0)
    with pytest.raises(IngestError, match="no training subject"):
        assign_splits(entries, 0.2, "10", seed=0)


def test_shards_readable_by_plain_pyarrow(dataset_path: Path) -> None:
    info = json.loads((dataset_path / "dataset.json").read_text())
    table = pq.read_table(dataset_path / info["shards"][0])
    field = table.schema.field("ct")
    shape = json.loads(field.metadata[b"madn.shape"])
    ct = np.frombuffer(table.column("ct").combine_chunks().buffers()[1], np.float32)
    ct = ct.reshape(-1, *shape)
    dataset = SliceDataset(dataset_path)
    positions = np.flatnonzero(dataset.index["shard"] == 0)
    np.testing.assert_array_equal(ct, dataset.read(positions, ["ct"])["ct"])
    assert set(table.column_names) >= {"subject_id", "slice_index", "split", "labels", "ct_clean"}


def test_cache_hit_and_new_key(synth_manifest: Path, tmp_path: Path) -> None:
    first = ingest(synth_manifest, tmp_path, NO_REGISTRATION, progress=False)
    stamp = (first.path / "dataset.json").stat().st_mtime_ns
    again = ingest(synth_manifest, tmp_path, NO_REGISTRATION, progress=False)
    assert again.cache_hit and again.path == first.path
    assert (first.path / "dataset.json").stat().st_mtime_ns == stamp
    other = IngestConfig(size=32, registration=RegistrationConfig(mode="none"), seed=1)
    changed = ingest(synth_manifest, tmp_path, other, progress=False)
    assert not changed.cache_hit and changed.key != first.key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_parallel_workers_write_the_same_dataset(synth_manifest: Path, tmp_path: Path) -> None:
    serial = ingest(synth_manifest, tmp_path / "a", NO_REGISTRATION, workers=1, progress=False)
    parallel = ingest(synth_manifest, tmp_path / "b", NO_REGISTRATION, workers=2, progress=False)
    assert serial.key == parallel.key
    for shard in serial.info["shards"]:
        assert pq.read_table(serial.path / shard).equals(pq.read_table(parallel.path / shard))


def _warped_pair() -> tuple[sitk.Image, sitk.Image]:
    """(fixed, moving): a 64 px, 16-slice T1 phantom and the same volume after a 4 degree
    rotation, a 5 mm shift and a smooth elastic warp."""
    phantom = make_phantom(64, 16, np.random.default_rng(2), None)
    t1 = np.array([t.t1 for t in TISSUES], dtype=np.float32)
    fixed = sitk.GetImageFromArray(t1[phantom.tissue])
    fixed.SetSpacing((6.0, 6.0, 7.5))
    affine = sitk.Euler3DTransform()
    affine.SetCenter(
        fixed.TransformContinuousIndexToPhysicalPoint([s / 2 for s in fixed.GetSize()])
    )
    affine.SetRotation(0.0, 0.0, np.deg2rad(4.0))
    affine.SetTranslation((5.0, -3.0, 0.0))
    elastic = sitk.BSplineTransformInitializer(fixed, [3, 3, 1])
    params = np.asarray(elastic.GetParameters())
    rng = np.random.default_rng(0)
    elastic.SetParameters((params + rng.normal(0, 3.0, params.shape)).tolist())
    warp = sitk.CompositeTransform([affine, elastic])
    return fixed, sitk.Resample(fixed, fixed, warp, sitk.sitkLinear, 0.0)


def _residual(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform | None) -> float:
    aligned = resample(moving, fixed, transform)
    return float(np.abs(aligned - sitk.GetArrayFromImage(fixed)).mean())


def test_registration_lowers_residual() -> None:
    fixed, moving = _warped_pair()
    before = _residual(fixed, moving, None)
    rigid_config = RegistrationConfig(mode="rigid")
    rigid = _residual(fixed, moving, register(fixed, moving, rigid_config, moving_is_ct=False))
    config = RegistrationConfig(mode="bspline", mesh_mm=120.0, sampling=0.5)
    bspline = _residual(fixed, moving, register(fixed, moving, config, moving_is_ct=False))
    assert rigid < 0.8 * before
    assert bspline < rigid


def test_mesh_refinement_adds_a_stage_at_half_the_control_spacing() -> None:
    fixed, moving = _warped_pair()
    config = RegistrationConfig(
        mode="bspline",
        mesh_mm=120.0,
        sampling=0.5,
        mesh_refine=True,
        rigid_iterations=50,
        bspline_iterations=15,
    )
    transform = register(fixed, moving, config, moving_is_ct=False)
    assert transform.GetNumberOfTransforms() == 3  # rigid, B-spline, refined B-spline
    coarse = sitk.BSplineTransform(transform.GetNthTransform(1))
    fine = sitk.BSplineTransform(transform.GetNthTransform(2))
    assert list(coarse.GetTransformDomainMeshSize()) == [3, 3, 1]  # 384 mm / 120 mm
    assert list(fine.GetTransformDomainMeshSize()) == [6, 6, 2]
    rigid_config = RegistrationConfig(mode="rigid", rigid_iterations=50)
    rigid = register(fixed, moving, rigid_config, moving_is_ct=False)
    assert _residual(fixed, moving, transform) < _residual(fixed, moving, rigid)


def test_estimation_grid_coarsens_in_plane_only_and_keeps_the_extent() -> None:
    image = sitk.Image([96, 80, 6], sitk.sitkFloat32)
    image.SetSpacing((1.5, 1.5, 7.5))
    image.SetOrigin((-72.0, -60.0, 0.0))
    coarse = estimation_grid(image, 3.0)
    assert coarse.GetSize() == (48, 40, 6)
    assert coarse.GetSpacing() == pytest.approx((3.0, 3.0, 7.5))
    for grid, size in ((0.0, 96), (1.0, 96), (4.4, 48), (4.5, 32)):  # whole factors, from below
        assert estimation_grid(image, grid).GetSize()[0] == size, grid

    def extent(img: sitk.Image) -> tuple[float, ...]:  # outer edges of the first/last voxels
        low = img.TransformContinuousIndexToPhysicalPoint([-0.5] * 3)
        high = img.TransformContinuousIndexToPhysicalPoint([s - 0.5 for s in img.GetSize()])
        return (*low, *high)

    assert extent(coarse) == pytest.approx(extent(image))
    with pytest.raises(ValueError, match="grid_mm must be >= 0 mm, got -1"):
        RegistrationConfig(grid_mm=-1.0)


def test_registration_on_a_coarser_grid_still_lowers_residual() -> None:
    """The transform estimated on the block-averaged grid applies to the full-resolution image."""
    phantom = make_phantom(64, 8, np.random.default_rng(3), None)
    t1 = np.array([t.t1 for t in TISSUES], dtype=np.float32)
    fixed = sitk.GetImageFromArray(t1[phantom.tissue])
    fixed.SetSpacing((3.0, 3.0, 7.5))
    shift = sitk.TranslationTransform(3, (6.0, -4.5, 0.0))
    moving = sitk.Resample(fixed, fixed, shift, sitk.sitkLinear, 0.0)
    reference = sitk.GetArrayFromImage(fixed)
    config = RegistrationConfig(mode="rigid", grid_mm=6.0)
    aligned = resample(moving, fixed, register(fixed, moving, config, moving_is_ct=False))
    before = resample(moving, fixed, None)
    assert np.abs(aligned - reference).mean() < 0.5 * np.abs(before - reference).mean()


def _copy_manifest(manifest: Path, folder: Path, edit=None) -> Path:
    """A copy of the manifest (and its volumes) that `edit(rows, folder)` may change."""
    shutil.copytree(manifest.parent, folder)
    path = folder / "manifest.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if edit is not None:
        rows = edit(rows, folder) or rows
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _missing_file(rows, folder):
    rows[0]["mri"] = "nowhere/mri.nii.gz"


def _truncated(rows, folder):
    ct = folder / rows[2]["ct"]
    data = ct.read_bytes()
    ct.write_bytes(data[: len(data) // 2])


def _two_dimensional(rows, folder):
    image = sitk.Image(16, 16, sitk.sitkFloat32)
    sitk.WriteImage(image, str(folder / "flat.nii.gz"))
    rows[1]["ct"] = "flat.nii.gz"


def _nan_voxels(rows, folder):
    path = folder / rows[3]["mri"]
    image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image)
    array[2, 5, 5] = np.nan
    broken = sitk.GetImageFromArray(array)
    broken.CopyInformation(image)
    sitk.WriteImage(broken, str(path))


def _no_overlap(rows, folder):
    path = folder / rows[4]["ct"]
    image = sitk.ReadImage(str(path))
    image.SetOrigin((2000.0, 0.0, 0.0))
    sitk.WriteImage(image, str(path))


def _missing_column(rows, folder):
    return [{k: v for k, v in row.items() if k != "mri"} for row in rows]


def _duplicate_id(rows, folder):
    rows[1]["subject_id"] = rows[0]["subject_id"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_missing_file, r"subject sub-000: mri file .*nowhere/mri.nii.gz does not exist"),
        (_truncated, r"subject sub-002 ct: .*ct.nii.gz is truncated"),
        (_two_dimensional, r"subject sub-001 ct: .*flat.nii.gz is 2D"),
        (_nan_voxels, r"subject sub-003 mri: .*mri.nii.gz has 1 NaN or infinite voxels"),
        (_no_overlap, r"subject sub-004: CT .*ct.nii.gz and MRI .*mri.nii.gz do not overlap"),
        (_missing_column, r"missing column\(s\) mri"),
        (_duplicate_id, r"duplicate subject_id 'sub-000'"),
    ],
)
def test_bad_input_one_line_error_and_untouched_cache(
    synth_manifest: Path, tmp_path: Path, capsys, edit, message
) -> None:
    manifest = _copy_manifest(synth_manifest, tmp_path / "data", edit)
    cache = tmp_path / "cache"
    existing = ingest(synth_manifest, cache, NO_REGISTRATION, progress=False)
    before = _listing(cache)
    code = main(
        [
            "ingest",
            "--manifest",
            str(manifest),
            "--out",
            str(cache),
            "--size",
            "32",
            "--register",
            "none",
            "--workers",
            "2",
        ]
    )
    err = capsys.readouterr().err.strip().replace("\r", "\n")
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2
    assert len(errors) == 1 and errors[0].startswith("madn ingest: error: ")
    err = errors[0]
    assert re.search(message, err), err
    assert _listing(cache) == before and (existing.path / "dataset.json").is_file()


def test_unwritable_cache_and_bad_settings(synth_manifest: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(IngestError, match="not a folder"):
        ingest(synth_manifest, blocker, NO_REGISTRATION, progress=False)
    with pytest.raises(IngestError, match="--size"):
        IngestConfig(size=30)


@pytest.mark.parametrize(
    ("implanted", "clean", "test", "val"),
    [(2, 2, "0.2", 0.25), (21, 7, "12", 0.15), (3, 1, "1", 0.25), (12, 12, "8", 0.15)],
)
def test_splits_keep_an_implanted_and_a_clean_subject_in_train(
    implanted: int, clean: int, test: str, val: float
) -> None:
    from pipelines.data.ingest import assign_splits
    from pipelines.data.manifest import SubjectEntry

    entries = [
        SubjectEntry(f"sub-{i:03d}", i < implanted, None, {}) for i in range(implanted + clean)
    ]
    split = assign_splits(entries, val, test, seed=0)
    train = [e for e in entries if split[e.subject_id] == "train"]
    assert any(e.has_metal for e in train) and any(not e.has_metal for e in train)
    tested = [e for e in entries if split[e.subject_id] == "test"]
    if implanted >= 12:  # proportional: the test split holds implanted subjects to evaluate
        assert sum(e.has_metal for e in tested) >= round(int(test) * implanted / len(entries)) - 1


def test_training_warning_names_the_missing_slices() -> None:
    from pipelines.data.ingest import training_warning

    both = {"train": {"subjects": 3, "metal": 8, "clean": 4}, "test": {"metal": 2, "clean": 0}}
    assert training_warning(both) is None
    no_metal = {"train": {"subjects": 2, "metal": 0, "clean": 4}}
    assert "no slices with metal" in str(training_warning(no_metal))
    assert "with metal or without metal" in str(training_warning({"test": {"metal": 1}}))
