"""A copy of an ingested dataset with the CT after a classical MAR (LI or NMAR) stored beside the
raw CT: what `madn ingest --ct-prior` writes, made from a dataset already ingested, without
reading and registering the volumes again (docs/model.md, ablation 15).

    python bench/prior_dataset.py SRC DST [--prior nmar|li]

SRC: an ingested dataset folder (`madn ingest` output, CACHE/<key>) without a prior. DST: a new
folder, which must not exist. Every shard is copied with a `ct_prior` column added: its slices
with metal went through `pipelines.baselines.mar.li_mar` or `nmar` (in HU, with the slice's own
metal mask and in-plane spacing, mapped back with the shard's CT window), the others are
copies of `ct` (`pipelines.data.ct_prior.prior_of_slices`). Every other column is unchanged.
`dataset.json` gains `ct_prior` and a key suffixed with the prior's name. `madn train` then
trains on `ct_prior` and records the prior in the checkpoint (`data.ct_prior`), so that `madn
correct` applies it first; validation and `madn evaluate` keep the raw `ct` as No MAR. Each
shard is written to a temporary name and renamed; the folder itself is renamed into place only
when complete, so DST is either whole or absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.baselines.mar import CT_PRIOR_METHODS
from pipelines.data.ct_prior import PRIOR_COLUMN, prior_of_slices
from pipelines.data.shards import is_image, schema, slices_table, tensor_column, write_shard


def corrected_ct(table: pa.Table, prior: str) -> np.ndarray:
    """(N, H, W) float32 in [-1, 1]: the shard's CT with its slices with metal corrected by
    `prior`; slices without metal are returned as they are."""
    window = (float(table.column("ct_min")[0].as_py()), float(table.column("ct_max")[0].as_py()))
    metal = tensor_column(table, "metal_mask") > 0
    spacing = table.column("spacing_x").to_numpy()
    return prior_of_slices(prior, tensor_column(table, "ct"), metal, spacing, window)


def copy_shard(source: Path, target: Path, prior: str) -> None:
    """Write `source` to `target` (via a temporary name) with a `ct_prior` column added."""
    table = pq.read_table(source)
    columns = {PRIOR_COLUMN: corrected_ct(table, prior)}
    for name in table.column_names:
        if is_image(table.schema.field(name)):
            columns[name] = np.array(tensor_column(table, name))
        else:
            columns[name] = table.column(name).to_numpy(zero_copy_only=False)
    size = tensor_column(table, "ct").shape[-1]
    extended = schema(size, "ct_clean" in table.column_names, with_prior=True)
    partial = target.with_name(target.name + ".partial")
    write_shard(slices_table(columns, extended), partial)
    partial.replace(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--prior", choices=sorted(CT_PRIOR_METHODS), default="nmar")
    args = parser.parse_args()
    info_path = args.src / "dataset.json"
    if not info_path.is_file():
        raise SystemExit(f"{args.src}: not an ingested dataset (no dataset.json)")
    if args.dst.exists():
        raise SystemExit(f"{args.dst}: exists; give a new folder")
    info = json.loads(info_path.read_text())
    if info.get("ct_prior", "none") != "none":
        raise SystemExit(f"{args.src}: already has CT prior {info['ct_prior']!r}")
    building = args.dst.with_name(args.dst.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    for shard in tqdm(info["shards"], desc=f"{args.prior} prior", unit="shard"):
        copy_shard(args.src / shard, building / shard, args.prior)
    info["key"] = f"{info['key']}-{args.prior}"
    info["ct_prior"] = args.prior
    (building / "dataset.json").write_text(json.dumps(info, indent=2))
    building.rename(args.dst)
    print(args.dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
