"""`madn ingest`: CT/MRI volumes described by a manifest -> a cached Parquet slice-shard dataset.

Per subject: read CT and MRI (NIfTI or DICOM), register CT to MRI (none | rigid | rigid +
B-spline; optionally estimated on a LI-MAR-corrected CT as in the paper), resample everything
onto an axis-aligned grid around the MRI (labels and masks nearest-neighbour), crop or pad to
`size` x `size` around the body, skip empty slices, map intensities to [-1, 1] (parameters kept
per slice), and write Parquet shards (`pipelines.data.shards`).

The dataset lives in `CACHE/<key>/`, key = hash of the input files' contents and of the
preprocessing configuration. It is built in a temporary folder inside CACHE and renamed into
place after `dataset.json` is written, so an interrupted or failed ingest leaves no dataset.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from madn_core.config import CT_PRIORS
from madn_core.umask import apply_umask
from pipelines.baselines.metal import EDGE_FRACTION, segment_metal
from pipelines.data.ct_prior import prior_of_slices
from pipelines.data.intensity import IntensityConfig, hu_to_unit, mri_range, mri_to_unit
from pipelines.data.manifest import SubjectEntry, read_manifest
from pipelines.data.registration import MODES, RegistrationConfig, register
from pipelines.data.shards import (
    IMAGE_COLUMNS,
    MASK_COLUMNS,
    PRIOR_COLUMN,
    ROW_GROUP_SLICES,
    SCHEMA_VERSION,
    is_image,
    schema,
    slices_table,
    write_shard,
)
from pipelines.data.volumes import (
    VolumeError,
    overlap_fraction,
    read_volume,
    reference_grid,
    resample,
)

SPLITS = ("train", "val", "test")
MAX_SHARD_BYTES = 256 * 2**20
BODY_HU = -500.0
MIN_OVERLAP = 0.2


class IngestError(ValueError):
    """Ingestion cannot proceed; the message names the subject and file when there is one."""


@dataclass(frozen=True)
class IngestConfig:
    """Everything that changes the dataset's content (and therefore its cache key).

    size: slice side (pixels); spacing_mm: (x, y, z) target spacing or None (see
    volumes.reference_grid); val_fraction: share of subjects in validation; test_subjects: a
    count ("2"), a share ("0.2") or a comma-separated list of ids; seed: split seed;
    register_on_li: estimate the registration on a LI-MAR-corrected CT (implanted subjects);
    metal_threshold_hu / metal_edge_fraction: metal segmentation when the manifest has no
    metal_mask (`pipelines.baselines.metal.segment_metal`: regions above the threshold, down to
    that fraction of their median HU; 0: the plain threshold);
    min_body_fraction: slices with less body (CT > -500 HU) than this are skipped;
    ct_prior: "li" or "nmar" stores that method's output beside the CT (column ct_prior,
    `pipelines.data.ct_prior`), the input of models trained after a classical MAR."""

    size: int = 256
    spacing_mm: tuple[float, float, float] | None = None
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    register_on_li: bool = False
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    val_fraction: float = 0.2
    test_subjects: str = "0.2"
    seed: int = 0
    metal_threshold_hu: float = 2500.0
    metal_edge_fraction: float = EDGE_FRACTION
    min_body_fraction: float = 0.01
    ct_prior: str = "none"

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 4:
            raise IngestError(f"--size must be a multiple of 4 and at least 8, got {self.size}")
        if self.spacing_mm is not None and (len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0):
            raise IngestError(f"--spacing must be three positive mm values, got {self.spacing_mm}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise IngestError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.registration.mode not in MODES:
            raise IngestError(f"--register must be one of {', '.join(MODES)}")
        if self.ct_prior not in CT_PRIORS:
            raise IngestError(
                f"--ct-prior must be one of {', '.join(CT_PRIORS)}, got {self.ct_prior!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestResult:
    """path: the dataset folder; cache_hit: nothing was computed; info: its dataset.json."""

    path: Path
    key: str
    cache_hit: bool
    info: dict[str, Any]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (names and bytes, sorted)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def source_description(entries: list[SubjectEntry]) -> list[dict[str, Any]]:
    """Per subject: id, has_metal, implant side and {role: {path, sha256}}."""
    return [
        {
            "subject_id": e.subject_id,
            "has_metal": e.has_metal,
            "implant_side": e.implant_side,
            "files": {
                role: {"path": str(p), "sha256": file_digest(p)} for role, p in e.files.items()
            },
        }
        for e in entries
    ]


def cache_key(sources: list[dict[str, Any]], config: IngestConfig) -> str:
    """Hash of the schema version, the preprocessing and the input contents (not their paths)."""
    content = [
        {
            "subject_id": s["subject_id"],
            "has_metal": s["has_metal"],
            "implant_side": s["implant_side"],
            "files": {role: f["sha256"] for role, f in sorted(s["files"].items())},
        }
        for s in sources
    ]
    payload = json.dumps(
        {"schema": SCHEMA_VERSION, "config": config.to_dict(), "subjects": content},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _test_count(text: str, total: int) -> int | None:
    """--test-subjects as a count (None when it names subject ids)."""
    try:
        number = float(text) if text else 0.0
    except ValueError:
        return None
    if number < 0 or (number >= 1 and number != int(number)):
        raise IngestError(
            f"--test-subjects must be a count, a fraction in [0, 1) or ids, got {text!r}"
        )
    count = int(number) if number >= 1 else round(number * total)
    if count >= total:
        raise IngestError(f"--test-subjects {text} leaves no training subject")
    return count


def _draw_stratified(groups: list[list[str]], count: int) -> list[str]:
    """`count` subjects taken from the front of the groups in proportion to their sizes, each
    group keeping at least one subject for training where the numbers allow (the groups are
    shuffled already). The drawn ones are removed from `groups`."""
    total = sum(len(g) for g in groups)
    if count <= 0 or total == 0:
        return []
    shares = [round(count * len(g) / total) for g in groups]
    while sum(shares) > count:
        shares[shares.index(max(shares))] -= 1
    while sum(shares) < count:
        spare = [len(g) - k for g, k in zip(groups, shares, strict=True)]
        shares[spare.index(max(spare))] += 1
    for i, group in enumerate(groups):  # leave one of each kind behind when another can give
        if len(group) >= 1 and shares[i] >= len(group):
            donor = max(range(len(groups)), key=lambda j: len(groups[j]) - shares[j] - (j == i))
            if donor != i and len(groups[donor]) - shares[donor] > 1:
                shares[i] -= 1
                shares[donor] += 1
    drawn = []
    for group, share in zip(groups, shares, strict=True):
        drawn += group[:share]
        del group[:share]
    return drawn


def assign_splits(
    entries: list[SubjectEntry], val_fraction: float, test_subjects: str, seed: int
) -> dict[str, str]:
    """Subject id -> split. Subjects are shuffled (seeded) within the implanted and the clean
    group; test, then validation, draw from both groups in proportion to their sizes, and train
    keeps at least one implanted and one clean subject whenever the counts allow (training needs
    both). Never splits a subject."""
    ids = [e.subject_id for e in entries]
    rng = random.Random(seed)
    groups = [[e.subject_id for e in entries if e.has_metal == flag] for flag in (True, False)]
    for group in groups:
        rng.shuffle(group)
    text = test_subjects.strip()
    count = _test_count(text, len(ids))
    if count is None:
        explicit = {t.strip() for t in text.split(",") if t.strip()}
        unknown = sorted(explicit - set(ids))
        if unknown:
            raise IngestError(f"--test-subjects names unknown subject(s): {', '.join(unknown)}")
        test = [s for g in groups for s in g if s in explicit]
        groups = [[s for s in g if s not in explicit] for g in groups]
    else:
        test = _draw_stratified(groups, count)
    val = _draw_stratified(groups, round(val_fraction * len(ids)))
    if not any(groups):
        raise IngestError(f"--val-fraction {val_fraction} leaves no training subject")
    split = {s: "train" for s in ids}
    split.update({s: "test" for s in test})
    split.update({s: "val" for s in val})
    return split


def training_warning(counts: dict[str, dict[str, int]]) -> str | None:
    """A one-line warning when the train split (`counts` as in dataset.json: split -> subjects,
    metal, clean slice counts) lacks slices with or without metal, which training needs both
    of; None when it has both."""
    train = counts.get("train", {})
    missing = [kind for kind in ("metal", "clean") if not train.get(kind)]
    if not missing:
        return None
    what = " or ".join("with metal" if k == "metal" else "without metal" for k in missing)
    return (
        f"the train split has no slices {what}: this dataset can be evaluated but not trained "
        "on (add subjects, or lower --test-subjects/--val-fraction)"
    )


def _crop_window(body: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (y, x) of a size x size window centred on the body's in-plane bounding box."""
    rows, cols = np.flatnonzero(body.any(axis=(0, 2))), np.flatnonzero(body.any(axis=(0, 1)))
    shape = body.shape[1:]
    if len(rows) == 0:
        return (shape[0] - size) // 2, (shape[1] - size) // 2
    centre_y, centre_x = (rows[0] + rows[-1] + 1) // 2, (cols[0] + cols[-1] + 1) // 2
    return int(centre_y - size // 2), int(centre_x - size // 2)


def _crop(volume: np.ndarray, top: int, left: int, size: int, fill: float) -> np.ndarray:
    """(Z, H, W) -> (Z, size, size) window at (top, left), padded with `fill` outside."""
    out = np.full((volume.shape[0], size, size), fill, dtype=volume.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, volume.shape[1]), min(left + size, volume.shape[2])
    if y1 > y0 and x1 > x0:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = volume[:, y0:y1, x0:x1]
    return out


def _li_corrected(ct: sitk.Image, metal: np.ndarray) -> sitk.Image:
    """The CT with LI-MAR applied slice by slice on its own grid (for estimating registration)."""
    from pipelines.baselines.mar import li_mar

    array = sitk.GetArrayFromImage(ct).astype(np.float32)
    corrected = li_mar(array, metal.astype(bool), pixel_mm=float(ct.GetSpacing()[0]))
    image = sitk.GetImageFromArray(corrected)
    image.CopyInformation(ct)
    return image


def _read_checked(entry: SubjectEntry) -> dict[str, sitk.Image]:
    """The subject's volumes by role, with CT and MRI overlapping and per-CT volumes sized
    like the CT; IngestError naming the file otherwise."""
    name = f"subject {entry.subject_id}"
    images = {role: read_volume(path, f"{name} {role}") for role, path in entry.files.items()}
    ct, mri = images["ct"], images["mri"]
    overlap = overlap_fraction(ct, mri)
    if overlap < MIN_OVERLAP:
        raise IngestError(
            f"{name}: CT {entry.files['ct']} and MRI {entry.files['mri']} do not overlap "
            f"({overlap:.0%} of the smaller volume; expected at least {MIN_OVERLAP:.0%})"
        )
    for role in ("ct_clean", "metal_mask"):
        if role in images and images[role].GetSize() != ct.GetSize():
            raise IngestError(
                f"{name}: {role} {entry.files[role]} has size {images[role].GetSize()}, "
                f"expected the CT's {ct.GetSize()}"
            )
    return images


def _metal_image(
    images: dict[str, sitk.Image], threshold_hu: float, edge_fraction: float
) -> sitk.Image:
    """The metal mask on the CT's grid: the given mask, else `segment_metal` of the CT."""
    ct = images["ct"]
    if "metal_mask" in images:
        metal = sitk.GetArrayFromImage(images["metal_mask"]) > 0
    else:
        metal = segment_metal(sitk.GetArrayViewFromImage(ct), threshold_hu, edge_fraction)
    metal_image = sitk.GetImageFromArray(metal.astype(np.uint8))
    metal_image.CopyInformation(ct)
    return metal_image


def _resample_all(
    images: dict[str, sitk.Image],
    metal: sitk.Image,
    config: IngestConfig,
    ground_truth: bool,
) -> tuple[dict[str, np.ndarray], sitk.Image]:
    """Every volume registered (CT-side ones through the CT->MRI transform) and resampled onto
    the MRI's reference grid: (arrays by column name, the grid)."""
    ct, mri = images["ct"], images["mri"]
    moving = ct
    has_metal = bool(sitk.GetArrayViewFromImage(metal).any())
    if config.register_on_li and has_metal and config.registration.mode != "none":
        moving = _li_corrected(ct, sitk.GetArrayFromImage(metal) > 0)
    transform = register(mri, moving, config.registration)
    grid = reference_grid(mri, config.size, config.spacing_mm)
    low_hu = config.intensity.ct_min
    arrays = {
        "ct": resample(ct, grid, transform, default=low_hu),
        "mri": resample(mri, grid),
        "metal_mask": resample(metal, grid, transform, nearest=True).astype(np.uint8),
    }
    arrays["labels"] = (
        resample(images["labels"], grid, nearest=True).astype(np.uint8)
        if "labels" in images
        else np.zeros(arrays["ct"].shape, np.uint8)
    )
    if ground_truth:
        arrays["ct_clean"] = (
            resample(images["ct_clean"], grid, transform, default=low_hu)
            if "ct_clean" in images
            else arrays["ct"]
        )
        arrays["mri_clean"] = (
            resample(images["mri_clean"], grid) if "mri_clean" in images else arrays["mri"]
        )
    return arrays, grid


def _crop_all(
    arrays: dict[str, np.ndarray], config: IngestConfig, mri_low: float
) -> tuple[dict[str, np.ndarray], int, int]:
    """Every array cropped (or padded) to size x size around the body: (crops, top, left)."""
    top, left = _crop_window(arrays["ct"] > BODY_HU, config.size)
    fill = {"ct": config.intensity.ct_min, "ct_clean": config.intensity.ct_min}
    fill.update({"mri": mri_low, "mri_clean": mri_low})
    crops = {
        name: _crop(array, top, left, config.size, fill.get(name, 0))
        for name, array in arrays.items()
    }
    return crops, top, left


def _slice_columns(
    entry: SubjectEntry,
    split: str,
    crops: dict[str, np.ndarray],
    config: IngestConfig,
    mri_window: tuple[float, float],
    geometry: tuple[tuple[float, ...], tuple[float, ...], int, int],
) -> dict[str, Any]:
    """The shard columns of the kept slices (enough body), metal slices first.
    geometry: (grid spacing, grid origin, crop top, crop left)."""
    body_fraction = (crops["ct"] > BODY_HU).mean(axis=(1, 2))
    keep = np.flatnonzero(body_fraction >= config.min_body_fraction)
    kept_metal = crops["metal_mask"][keep].any(axis=(1, 2))
    sort = np.lexsort((keep, ~kept_metal))  # metal slices first: homogeneous row groups
    order, has_metal = keep[sort], kept_metal[sort]
    n = len(order)
    spacing, origin, top, left = geometry
    columns: dict[str, Any] = {
        "subject_id": [entry.subject_id] * n,
        "slice_index": order.astype(np.int32),
        "split": [split] * n,
        "has_metal": has_metal,
        "subject_has_metal": np.full(n, entry.has_metal),
        "implant_side": [entry.implant_side] * n,
        "ct_min": np.full(n, config.intensity.ct_min, np.float32),
        "ct_max": np.full(n, config.intensity.ct_max, np.float32),
        "mri_low": np.full(n, mri_window[0], np.float32),
        "mri_high": np.full(n, mri_window[1], np.float32),
        "spacing_x": np.full(n, spacing[0]),
        "spacing_y": np.full(n, spacing[1]),
        "spacing_z": np.full(n, spacing[2]),
        "origin_x": np.full(n, origin[0] + left * spacing[0]),
        "origin_y": np.full(n, origin[1] + top * spacing[1]),
        "origin_z": origin[2] + order * spacing[2],
        "metal_mask": crops["metal_mask"][order],
        "labels": crops["labels"][order],
    }
    window = (config.intensity.ct_min, config.intensity.ct_max)
    for role in IMAGE_COLUMNS:
        if role in crops:
            volume = crops[role][order]
            columns[role] = (
                hu_to_unit(volume, *window)
                if role.startswith("ct")
                else mri_to_unit(volume, *mri_window)
            )
    return columns


def _write_subject_shards(
    columns: dict[str, Any], subject_id: str, size: int, ground_truth: bool, out_dir: str
) -> list[str]:
    """The columns as Parquet shards of at most MAX_SHARD_BYTES; their file names."""
    n = len(columns["subject_id"])
    table_schema = schema(size, ground_truth, with_prior=PRIOR_COLUMN in columns)
    images = sum(is_image(f) for f in table_schema) - len(MASK_COLUMNS)
    bytes_per_slice = size * size * (4 * images + len(MASK_COLUMNS))
    per_shard = max(ROW_GROUP_SLICES, MAX_SHARD_BYTES // bytes_per_slice)
    shards = []
    for part, start in enumerate(range(0, n, per_shard)):
        table = slices_table(
            {k: v[start : start + per_shard] for k, v in columns.items()}, table_schema
        )
        shard = f"{subject_id}-{part:03d}.parquet"
        write_shard(table, Path(out_dir) / shard)
        shards.append(shard)
    return shards


def process_subject(
    entry: SubjectEntry, split: str, config: IngestConfig, ground_truth: bool, out_dir: str
) -> dict[str, Any]:
    """Ingest one subject into `out_dir/<subject>-<part>.parquet`; returns its counts."""
    images = _read_checked(entry)
    metal = _metal_image(images, config.metal_threshold_hu, config.metal_edge_fraction)
    arrays, grid = _resample_all(images, metal, config, ground_truth)
    mri_window = mri_range(arrays["mri"], config.intensity.mri_percentiles)
    crops, top, left = _crop_all(arrays, config, mri_window[0])
    geometry = (grid.GetSpacing(), grid.GetOrigin(), top, left)
    columns = _slice_columns(entry, split, crops, config, mri_window, geometry)
    if config.ct_prior != "none":
        window = (config.intensity.ct_min, config.intensity.ct_max)
        in_slice = columns["metal_mask"] > 0
        columns[PRIOR_COLUMN] = prior_of_slices(
            config.ct_prior, columns["ct"], in_slice, columns["spacing_x"], window
        )
    shards = _write_subject_shards(columns, entry.subject_id, config.size, ground_truth, out_dir)
    n, metal_slices = len(columns["subject_id"]), int(columns["has_metal"].sum())
    return {
        "subject_id": entry.subject_id,
        "split": split,
        "shards": shards,
        "metal_slices": metal_slices,
        "clean_slices": n - metal_slices,
        "skipped_slices": int(arrays["ct"].shape[0] - n),
        "has_labels": "labels" in images,
    }


def _init_worker() -> None:
    """Worker processes use one thread each: parallelism comes from the processes."""
    import torch

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    torch.set_num_threads(1)


def ingest(
    manifest: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    config: IngestConfig | None = None,
    workers: int = 1,
    progress: bool = True,
) -> IngestResult:
    """Build (or find) the dataset for `manifest` under `cache`. Raises IngestError,
    ManifestError or VolumeError (all ValueError) with nothing left in `cache`."""
    config = config or IngestConfig()
    if workers < 1:
        raise IngestError(f"--workers must be >= 1, got {workers}")
    entries = read_manifest(manifest)
    sources = source_description(entries)
    key = cache_key(sources, config)
    root = Path(cache)
    target = root / key
    if (target / "dataset.json").is_file():
        info = json.loads((target / "dataset.json").read_text())
        return IngestResult(target, key, True, info)
    if root.exists() and not root.is_dir():
        raise IngestError(f"cache {root} exists and is not a folder")
    splits = assign_splits(entries, config.val_fraction, config.test_subjects, config.seed)
    ground_truth = all(
        ("ct_clean" in e.files and "mri_clean" in e.files) or not e.has_metal for e in entries
    )
    created_root = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
        apply_umask(staging)  # mkdtemp makes 0700; the folder is renamed into place
    except OSError as error:
        raise IngestError(f"cannot write to cache {root}: {error.strerror}") from None
    started = time.perf_counter()
    try:
        results = _run_subjects(entries, splits, config, ground_truth, staging, workers, progress)
        info = _dataset_info(key, manifest, sources, config, ground_truth, results, splits)
        info["ingest_seconds"] = round(time.perf_counter() - started, 2)
        (staging / "dataset.json").write_text(json.dumps(info, indent=2))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "dataset.json").is_file():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent ingest finished first
            return IngestResult(
                target, key, True, json.loads((target / "dataset.json").read_text())
            )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return IngestResult(target, key, False, info)


def _run_subjects(
    entries: list[SubjectEntry],
    splits: dict[str, str],
    config: IngestConfig,
    ground_truth: bool,
    staging: Path,
    workers: int,
    progress: bool,
) -> list[dict[str, Any]]:
    bar = tqdm(total=len(entries), desc="ingest", unit="subject", disable=not progress)
    results: list[dict[str, Any]] = []
    try:
        if workers == 1:
            for entry in entries:
                results.append(
                    process_subject(
                        entry, splits[entry.subject_id], config, ground_truth, str(staging)
                    )
                )
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_init_worker
            ) as pool:
                pending = {
                    pool.submit(
                        process_subject, e, splits[e.subject_id], config, ground_truth, str(staging)
                    )
                    for e in entries
                }
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        if future.exception() is not None:
                            for other in pending:
                                other.cancel()
                            raise future.exception()  # type: ignore[misc]
                        results.append(future.result())
                        bar.update(1)
    finally:
        bar.close()
    order = {e.subject_id: i for i, e in enumerate(entries)}
    return sorted(results, key=lambda r: order[r["subject_id"]])


def _dataset_info(
    key: str,
    manifest: str | os.PathLike[str],
    sources: list[dict[str, Any]],
    config: IngestConfig,
    ground_truth: bool,
    results: list[dict[str, Any]],
    splits: dict[str, str],
) -> dict[str, Any]:
    counts = {
        split: {
            "subjects": sum(r["split"] == split for r in results),
            "metal": sum(r["metal_slices"] for r in results if r["split"] == split),
            "clean": sum(r["clean_slices"] for r in results if r["split"] == split),
        }
        for split in SPLITS
    }
    if sum(c["metal"] + c["clean"] for c in counts.values()) == 0:
        raise IngestError("no slice had any body in it (CT > -500 HU); nothing to write")
    return {
        "schema_version": SCHEMA_VERSION,
        "key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "image_size": config.size,
        "channels": ["ct", "mri"],
        "has_ground_truth": ground_truth,
        "ct_prior": config.ct_prior,
        "subjects_with_labels": [r["subject_id"] for r in results if r["has_labels"]],
        "source": {
            "manifest": str(Path(manifest).resolve()),
            "manifest_sha256": file_digest(Path(manifest)),
            "subjects": sources,
        },
        "preprocessing": config.to_dict(),
        "splits": {split: sorted(s for s, v in splits.items() if v == split) for split in SPLITS},
        "counts": counts,
        "skipped_slices": sum(r["skipped_slices"] for r in results),
        "shards": [s for r in results for s in r["shards"]],
    }


def parse_spacing(text: str | None) -> tuple[float, float, float] | None:
    """'1.5' -> (1.5, 1.5, 1.5); '1.5,1.5,3' -> (1.5, 1.5, 3.0); None -> None."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise IngestError(
            f"--spacing must be mm values like 1.5 or 1.5,1.5,3, got {text!r}"
        ) from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3 or min(values) <= 0 or not all(math.isfinite(v) for v in values):
        raise IngestError(f"--spacing must be one or three positive mm values, got {text!r}")
    return (values[0], values[1], values[2])


__all__ = [
    "IngestConfig",
    "IngestError",
    "IngestResult",
    "VolumeError",
    "assign_splits",
    "cache_key",
    "ingest",
    "parse_spacing",
    "process_subject",
    "training_warning",
]
