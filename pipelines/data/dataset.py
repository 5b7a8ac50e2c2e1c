"""Reading an ingested slice-shard dataset: an index, row-group reads, and training batches.

`SliceDataset(location)` opens `CACHE/<key>` from a local path or any pyarrow filesystem URI
(`s3://bucket/cache/<key>`, `gs://...`, `file:///...`). Only the small scalar columns are read up
front (the index); images are read a row group at a time, so memory stays bounded by the row
groups in flight, not by the dataset. Images come out of Parquet as fixed-shape tensors that
convert to numpy without a copy, and to torch with `torch.from_numpy`.

`UnpairedBatches` is the training source: each step pairs a batch of artefact-affected slices
(`has_metal`) with an independent batch of artefact-free slices, both (B, C, H, W) float32 in
[-1, 1], for channels ("ct",), ("mri",) or ("ct", "mri"). Row groups are visited in a seeded
random order and shuffled within a window of several row groups; the order is a function of
(seed, epoch) only, which is what `madn_core.trainer` needs for exact resume.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch

from pipelines.data.locations import is_uri, redact
from pipelines.data.patches import crop_at, focused_corners
from pipelines.data.shards import SCHEMA_VERSION, is_image, tensor_column

INDEX_COLUMNS = (
    "subject_id",
    "slice_index",
    "split",
    "has_metal",
    "subject_has_metal",
    "implant_side",
)
PARAMETER_COLUMNS = (
    "ct_min",
    "ct_max",
    "mri_low",
    "mri_high",
    "spacing_x",
    "spacing_y",
    "spacing_z",
    "origin_x",
    "origin_y",
    "origin_z",
)
CHANNEL_SETS = {"adn-ct": ("ct",), "adn-mr": ("mri",), "multichannel": ("ct", "mri")}


class DatasetError(ValueError):
    """The dataset cannot be opened or does not have what was asked of it."""


def channels_for_variant(variant: str) -> tuple[str, ...]:
    """Image columns a model variant consumes: adn-ct -> (ct,), adn-mr -> (mri,), else both."""
    return CHANNEL_SETS.get(variant, ("ct", "mri"))


def _open_location(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str, bool]:
    text = str(location)
    if is_uri(text) and not text.startswith("file://"):
        try:
            filesystem, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
            raise DatasetError(f"cannot open dataset URI {redact(text)}: {error}") from None
        return filesystem, path.rstrip("/"), False
    path = text[len("file://") :] if text.startswith("file://") else text
    return pafs.LocalFileSystem(), str(Path(path).resolve()), True


class SliceDataset:
    """An ingested dataset. `index` is a dict of numpy arrays (one entry per slice) with the
    INDEX_COLUMNS plus `shard`, `row_group` and `row` (the slice's position in the files)."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.location = str(location)
        self.display = redact(self.location)  # for messages: no credentials
        self.filesystem, self.root, self.local = _open_location(location)
        info_path = f"{self.root}/dataset.json"
        try:
            with self.filesystem.open_input_stream(info_path) as stream:
                self.info: dict[str, Any] = json.loads(stream.read().decode())
        except (FileNotFoundError, OSError):
            raise DatasetError(
                f"{self.display} is not a complete madn dataset (no dataset.json); "
                "run `madn ingest` and pass the folder it prints"
            ) from None
        if self.info.get("schema_version") != SCHEMA_VERSION:
            raise DatasetError(
                f"{self.display}: schema version {self.info.get('schema_version')}, "
                f"this madn reads {SCHEMA_VERSION}; re-run `madn ingest`"
            )
        self.size: int = int(self.info["image_size"])
        self.has_ground_truth: bool = bool(self.info["has_ground_truth"])
        self._files: dict[int, pq.ParquetFile] = {}
        self.index = self._build_index()

    def _file(self, shard: int) -> pq.ParquetFile:
        if shard not in self._files:
            path = f"{self.root}/{self.info['shards'][shard]}"
            source = pa.memory_map(path) if self.local else self.filesystem.open_input_file(path)
            self._files[shard] = pq.ParquetFile(source)
        return self._files[shard]

    def _build_index(self) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {
            k: [] for k in (*INDEX_COLUMNS, "shard", "row_group", "row")
        }
        for shard in range(len(self.info["shards"])):
            file = self._file(shard)
            table = file.read(columns=list(INDEX_COLUMNS))
            for name in INDEX_COLUMNS:
                parts[name].append(table.column(name).to_numpy(zero_copy_only=False))
            groups = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
            parts["shard"].append(np.full(table.num_rows, shard, np.int32))
            parts["row_group"].append(np.repeat(np.arange(len(groups), dtype=np.int32), groups))
            parts["row"].append(np.concatenate([np.arange(n, dtype=np.int32) for n in groups]))
        return {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()}

    def __len__(self) -> int:
        return len(self.index["shard"])

    def select(
        self, split: str | None = None, has_metal: bool | None = None, subject: str | None = None
    ) -> np.ndarray:
        """Positions (into `index`) of the slices matching all given filters, in file order."""
        keep = np.ones(len(self), dtype=bool)
        if split is not None:
            keep &= self.index["split"] == split
        if has_metal is not None:
            keep &= self.index["has_metal"] == has_metal
        if subject is not None:
            keep &= self.index["subject_id"] == subject
        return np.flatnonzero(keep)

    def subjects(self, split: str | None = None) -> list[str]:
        """Subject ids (sorted) that have slices in `split` (all splits when None)."""
        positions = self.select(split=split)
        return sorted(set(self.index["subject_id"][positions].tolist()))

    @property
    def columns(self) -> set[str]:
        """The shards' column names."""
        return set(self._file(0).schema_arrow.names) if self.info["shards"] else set()

    def check_columns(self, columns: Sequence[str]) -> None:
        available = self.columns
        missing = [c for c in columns if c not in available]
        if missing:
            raise DatasetError(
                f"{self.display} has no column(s) {', '.join(missing)}"
                + (" (no ground truth in this dataset)" if "ct_clean" in missing else "")
            )

    def read_group(self, shard: int, row_group: int, columns: Sequence[str]) -> pa.Table:
        return self._file(shard).read_row_group(row_group, columns=list(columns))

    def read(self, positions: np.ndarray, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Rows at `positions` (any order, kept): images (N, H, W), scalars (N,)."""
        self.check_columns(columns)
        positions = np.asarray(positions)
        out: dict[str, np.ndarray] = {}
        keys = self.index["shard"][positions].astype(np.int64) << 32 | self.index["row_group"][
            positions
        ].astype(np.int64)
        for key in np.unique(keys):
            at = np.flatnonzero(keys == key)
            table = self.read_group(int(key >> 32), int(key & 0xFFFFFFFF), columns)
            rows = self.index["row"][positions[at]]
            for name in columns:
                values = _column_array(table, name)[rows]
                if name not in out:
                    out[name] = np.empty((len(positions), *values.shape[1:]), values.dtype)
                out[name][at] = values
        return out

    def read_subject(self, subject: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """All slices of a subject ordered by slice_index: images (Z, H, W), scalars (Z,)."""
        positions = self.select(subject=subject)
        if len(positions) == 0:
            raise DatasetError(f"{self.display} has no subject {subject!r}")
        positions = positions[np.argsort(self.index["slice_index"][positions], kind="stable")]
        data = self.read(positions, columns)
        data["slice_index"] = self.index["slice_index"][positions]
        return data


def _column_array(table: pa.Table, name: str) -> np.ndarray:
    if is_image(table.schema.field(name)):
        return tensor_column(table, name)
    return table.column(name).to_numpy(zero_copy_only=False)


@dataclass
class Augment:
    """flip: random left-right flips (probability 0.5 per slice); crop: random square crop side
    in pixels (None: full slices); focus: with a crop, the fraction of artefact-affected slices
    cropped around their implant, each paired clean slice cropped at the same place
    (`pipelines.data.patches`; 0: one uniform crop position per batch and domain)."""

    flip: bool = False
    crop: int | None = None
    focus: float = 0.0


class UnpairedBatches:
    """Training batches: callable `epoch -> iterator of (corrupted, clean)` (see module doc).

    One epoch = len(self) steps = the artefact-affected slices of the split divided by the batch
    size (last partial batch dropped); artefact-free slices are drawn in their own shuffled order,
    restarting when exhausted. window_groups: row groups shuffled together (memory bound:
    window_groups x 32 slices per domain)."""

    def __init__(
        self,
        dataset: SliceDataset,
        split: str = "train",
        channels: Sequence[str] = ("ct", "mri"),
        batch_size: int = 4,
        seed: int = 0,
        augment: Augment | None = None,
        window_groups: int = 8,
    ) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch size must be >= 1, got {batch_size}")
        dataset.check_columns(channels)
        self.dataset = dataset
        self.channels = tuple(channels)
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment or Augment()
        if self.augment.crop is not None and not 0 < self.augment.crop <= dataset.size:
            raise DatasetError(f"crop {self.augment.crop} must be in 1..{dataset.size}")
        if not 0.0 <= self.augment.focus <= 1.0:
            raise DatasetError(f"patch focus {self.augment.focus} must be in [0, 1]")
        self.focused = bool(self.augment.focus > 0 and self.augment.crop is not None)
        if self.focused:
            dataset.check_columns(("metal_mask",))
        self.window_groups = window_groups
        self.domains = []
        for has_metal in (True, False):
            positions = dataset.select(split=split, has_metal=has_metal)
            if len(positions) == 0:
                kind = "with" if has_metal else "without"
                raise DatasetError(
                    f"{dataset.location}: split {split!r} has no slices {kind} metal; "
                    "training needs both (check the manifest's has_metal and the split settings)"
                )
            self.domains.append(self._groups(positions))
        self.corrupted_slices = sum(len(rows) for _, _, rows in self.domains[0])
        if self.corrupted_slices < batch_size:
            raise DatasetError(
                f"split {split!r} has {self.corrupted_slices} slices with metal, fewer than "
                f"the batch size {batch_size}"
            )

    def _groups(self, positions: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """[(shard, row_group, rows within it)] covering `positions`."""
        index = self.dataset.index
        groups: dict[tuple[int, int], list[int]] = {}
        for p in positions:
            groups.setdefault((int(index["shard"][p]), int(index["row_group"][p])), []).append(
                int(index["row"][p])
            )
        return [(s, g, np.array(rows)) for (s, g), rows in sorted(groups.items())]

    def __len__(self) -> int:
        return self.corrupted_slices // self.batch_size

    def _slices(
        self, domain: int, rng: np.random.Generator, repeat: bool, columns: Sequence[str]
    ) -> Iterator[tuple[list[np.ndarray], int]]:
        """One domain's slices in shuffled order, as (arrays of `columns` of a row group, row).
        The arrays are zero-copy views of the decoded row groups of the current window."""
        groups = self.domains[domain]
        while True:
            order = rng.permutation(len(groups))
            for start in range(0, len(order), self.window_groups):
                refs: list[tuple[list[np.ndarray], int]] = []
                for g in order[start : start + self.window_groups]:
                    shard, row_group, rows = groups[g]
                    table = self.dataset.read_group(shard, row_group, columns)
                    arrays = [tensor_column(table, name) for name in columns]
                    refs.extend((arrays, int(r)) for r in rows)
                for i in rng.permutation(len(refs)):
                    yield refs[i]
            if not repeat:
                return

    def _full_slices(
        self, domain: int, rng: np.random.Generator, repeat: bool, with_metal: bool = False
    ) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        """Uncropped (B, C, H, W) float32 batches, each slice copied once into its batch, with
        their (B, H, W) bool metal masks when `with_metal`."""
        size = self.dataset.size
        columns = (*self.channels, "metal_mask") if with_metal else self.channels
        source = self._slices(domain, rng, repeat, columns)
        while True:
            batch = np.empty((self.batch_size, len(self.channels), size, size), np.float32)
            metal = np.zeros((self.batch_size, size, size), bool) if with_metal else None
            for i in range(self.batch_size):
                ref = next(source, None)
                if ref is None:
                    return
                arrays, row = ref
                for c, array in enumerate(arrays[: len(self.channels)]):
                    batch[i, c] = array[row]
                if metal is not None:
                    metal[i] = arrays[-1][row] > 0
            yield torch.from_numpy(batch), metal

    def _batches(
        self, domain: int, rng: np.random.Generator, repeat: bool
    ) -> Iterator[torch.Tensor]:
        """(B, C, H, W) float32 batches, cropped (one uniform position) and flipped."""
        for batch, _ in self._full_slices(domain, rng, repeat):
            yield self._augment(batch, rng)

    def _augment(self, batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.augment.crop is not None and self.augment.crop < batch.shape[-1]:
            side = self.augment.crop
            top, left = rng.integers(0, batch.shape[-1] - side + 1, size=2)
            batch = batch[..., top : top + side, left : left + side]
        return self._flip(batch.contiguous(), rng)

    def _flip(self, batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.augment.flip:
            flips = torch.from_numpy(rng.random(batch.shape[0]) < 0.5)
            if flips.any():
                batch[flips] = batch[flips].flip(-1)
        return batch.contiguous()

    def _focused_pairs(
        self, corrupted_rng: np.random.Generator, clean_rng: np.random.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(corrupted, clean) crops at shared per-slice corners, implant-centred (patches.py)."""
        clean = self._full_slices(1, clean_rng, repeat=True)
        corrupted = self._full_slices(0, corrupted_rng, repeat=False, with_metal=True)
        side = int(self.augment.crop)  # type: ignore[arg-type]  # focused implies a crop
        for _ in range(len(self)):
            batch, metal = next(corrupted)
            assert metal is not None
            corners = focused_corners(metal, side, self.augment.focus, corrupted_rng)
            yield (
                self._flip(crop_at(batch, corners, side), corrupted_rng),
                self._flip(crop_at(next(clean)[0], corners, side), clean_rng),
            )

    def __call__(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        corrupted_rng = np.random.default_rng([self.seed, epoch, 0])
        clean_rng = np.random.default_rng([self.seed, epoch, 1])
        if self.focused:
            yield from self._focused_pairs(corrupted_rng, clean_rng)
            return
        clean = self._batches(1, clean_rng, repeat=True)
        corrupted = self._batches(0, corrupted_rng, repeat=False)
        for _ in range(len(self)):
            yield next(corrupted), next(clean)


def iter_slices(
    dataset: SliceDataset,
    split: str,
    columns: Sequence[str],
    batch_size: int = 16,
    has_metal: bool | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Deterministic iteration (file order) over a split's slices in batches: dicts of
    `columns` plus the index columns, images (B, H, W)."""
    positions = dataset.select(split=split, has_metal=has_metal)
    for start in range(0, len(positions), batch_size):
        part = positions[start : start + batch_size]
        batch = dataset.read(part, columns)
        for name in INDEX_COLUMNS:
            batch[name] = dataset.index[name][part]
        yield batch
