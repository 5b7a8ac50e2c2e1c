"""The Parquet slice-shard format (docs/data.md): one row per axial slice.

Images are stored one per row as a FIXED_LEN_BYTE_ARRAY of H*W little-endian values (float32
for images, uint8 for masks), with `madn.dtype` and `madn.shape` in the field metadata. A row
group's column then reads back as a single contiguous buffer, viewed as an (N, H, W) numpy
array with no copy: `np.frombuffer(chunk.buffers()[1], dtype).reshape(-1, H, W)`. (Arrow's
fixed-shape tensor type stores each pixel as a list element with its own Parquet level, which
made decoding ~10x slower here: bench/loader.py, docs/benchmarks.md.)

Columns (SCHEMA_VERSION 1):
  subject_id str, slice_index int32, split str (train/val/test), has_metal bool (metal in this
  slice), subject_has_metal bool, implant_side str;
  ct, mri, [ct_clean, mri_clean], [ct_prior] float32 (H, W) in [-1, 1]; metal_mask, labels
  uint8 (H, W). ct_prior (datasets ingested with --ct-prior): the CT after LI or NMAR
  (pipelines.data.ct_prior), beside the raw ct;
  ct_min, ct_max (HU window), mri_low, mri_high (MRI range) float32: the intensity mapping;
  spacing_x, spacing_y, spacing_z, origin_x, origin_y, origin_z float64 (mm, LPS, identity
  direction): the slice's geometry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
IMAGE_COLUMNS = ("ct", "mri", "ct_clean", "mri_clean")
PRIOR_COLUMN = "ct_prior"  # optional: the CT after a classical MAR (pipelines.data.ct_prior)
MASK_COLUMNS = ("metal_mask", "labels")
SCALAR_COLUMNS: dict[str, pa.DataType] = {
    "subject_id": pa.string(),
    "slice_index": pa.int32(),
    "split": pa.string(),
    "has_metal": pa.bool_(),
    "subject_has_metal": pa.bool_(),
    "implant_side": pa.string(),
    "ct_min": pa.float32(),
    "ct_max": pa.float32(),
    "mri_low": pa.float32(),
    "mri_high": pa.float32(),
    "spacing_x": pa.float64(),
    "spacing_y": pa.float64(),
    "spacing_z": pa.float64(),
    "origin_x": pa.float64(),
    "origin_y": pa.float64(),
    "origin_z": pa.float64(),
}
ROW_GROUP_SLICES = 32


def _image_field(name: str, dtype: str, size: int) -> pa.Field:
    itemsize = np.dtype(dtype).itemsize
    return pa.field(
        name,
        pa.binary(size * size * itemsize),
        nullable=False,
        metadata={"madn.dtype": dtype, "madn.shape": json.dumps([size, size])},
    )


def schema(size: int, ground_truth: bool, with_prior: bool = False) -> pa.Schema:
    """The Arrow schema of a shard of `size` x `size` slices (`with_prior`: a ct_prior column)."""
    fields = [pa.field(name, kind, nullable=False) for name, kind in SCALAR_COLUMNS.items()]
    images = [*(IMAGE_COLUMNS if ground_truth else IMAGE_COLUMNS[:2])]
    images += [PRIOR_COLUMN] * with_prior
    fields += [_image_field(n, "float32", size) for n in images]
    fields += [_image_field(n, "uint8", size) for n in MASK_COLUMNS]
    return pa.schema(fields, metadata={"madn_schema_version": str(SCHEMA_VERSION)})


def is_image(field: pa.Field) -> bool:
    return field.metadata is not None and b"madn.dtype" in field.metadata


def slices_table(columns: Mapping[str, np.ndarray], table_schema: pa.Schema) -> pa.Table:
    """Build a table from numpy columns: scalars (N,) and images (N, H, W) of the schema's type."""
    arrays = []
    for field in table_schema:
        values = columns[field.name]
        if is_image(field):
            data = np.ascontiguousarray(values, dtype=field.metadata[b"madn.dtype"].decode())
            buffer = pa.py_buffer(data)  # shares memory with `data`, no copy
            arrays.append(
                pa.FixedSizeBinaryArray.from_buffers(field.type, len(data), [None, buffer])
            )
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=table_schema)


def write_shard(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write one shard: float images uncompressed with plain encoding (they barely compress, and
    decoding is then a copy), masks and scalars ZSTD (mostly zeros; Parquet stores uint8 as
    int32), row groups of ROW_GROUP_SLICES slices."""
    target = Path(path)
    images = [f.name for f in table.schema if is_image(f)]
    floats = [
        f.name for f in table.schema if is_image(f) and f.metadata[b"madn.dtype"] == b"float32"
    ]
    pq.write_table(
        table,
        target,
        row_group_size=ROW_GROUP_SLICES,
        compression={n: ("NONE" if n in floats else "ZSTD") for n in table.column_names},
        use_dictionary=[n for n in table.column_names if n not in images],
        write_statistics=["subject_id", "split", "has_metal", "slice_index"],
    )
    return target


def tensor_column(table: pa.Table, name: str) -> np.ndarray:
    """An image column as an (N, H, W) numpy array: a read-only view when it is one chunk."""
    field = table.schema.field(name)
    if not is_image(field):
        raise ValueError(f"column {name!r} is not an image column")
    dtype = np.dtype(field.metadata[b"madn.dtype"].decode())
    shape = json.loads(field.metadata[b"madn.shape"])
    column = table.column(name)
    chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    width = field.type.byte_width
    data = chunk.buffers()[1]
    view = np.frombuffer(
        data, dtype=np.uint8, count=len(chunk) * width, offset=chunk.offset * width
    )
    return view.view(dtype).reshape(len(chunk), *shape)
