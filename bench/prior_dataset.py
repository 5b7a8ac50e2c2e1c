"""A copy of an ingested dataset whose CT channel is first corrected by a classical MAR method
(LI or NMAR): the input of the hybrid "NMAR, then the network" experiment (docs/model.md,
ablation 15).

    python bench/prior_dataset.py SRC DST [--prior nmar|li]

SRC: an ingested dataset folder (`madn ingest` output, CACHE/<key>). DST: a new folder, which
must not exist. Every shard is copied with its `ct` column replaced, on the slices with metal,
by `pipelines.baselines.mar.li_mar` or `nmar` of that slice (in HU, with the slice's own metal
mask and in-plane spacing, mapped back with the shard's CT window); the clean CT, the MRI, the
masks and every scalar are unchanged. `dataset.json` gains `ct_prior` and a key suffixed with
the prior's name. `madn train` records `ct_prior` in the checkpoint (`data.ct_prior`), so that
`madn correct` applies the same prior before the network. Each shard is written to a
temporary name and renamed; the folder itself is renamed into place only when complete, so DST
is either whole or absent. On such a dataset, `madn evaluate`'s "No MAR" is the prior's output.
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

from pipelines.baselines.mar import CT_PRIOR_METHODS, apply_ct_prior
from pipelines.data.intensity import hu_to_unit, unit_to_hu
from pipelines.data.shards import slices_table, tensor_column, write_shard


def prior_of_slices(
    prior: str,
    ct: np.ndarray,
    metal: np.ndarray,
    spacing_mm: np.ndarray,
    window: tuple[float, float],
) -> np.ndarray:
    """(N, H, W) CT in [-1, 1] (HU `window`) -> a float32 copy whose slices with metal
    (`metal`: (N, H, W) bool) went through `prior` in one call, at the slices' in-plane
    spacing (`spacing_mm`: (N,), one value, as one subject has); the others are unchanged."""
    if len(np.unique(spacing_mm)) > 1:
        raise ValueError(f"in-plane spacings {np.unique(spacing_mm)} mm; expected one")
    out = np.array(ct, dtype=np.float32)
    rows = metal.reshape(len(ct), -1).any(axis=1)
    if rows.any():
        hu = unit_to_hu(out[rows], *window)
        fixed = apply_ct_prior(prior, hu, metal[rows], float(spacing_mm[0]))
        out[rows] = np.clip(hu_to_unit(fixed, *window), -1.0, 1.0)
    return out


def corrected_ct(table: pa.Table, prior: str) -> np.ndarray:
    """(N, H, W) float32 in [-1, 1]: the shard's CT with its slices with metal corrected by
    `prior`; slices without metal are returned as they are."""
    window = (float(table.column("ct_min")[0].as_py()), float(table.column("ct_max")[0].as_py()))
    metal = tensor_column(table, "metal_mask") > 0
    spacing = table.column("spacing_x").to_numpy()
    return prior_of_slices(prior, tensor_column(table, "ct"), metal, spacing, window)


def copy_shard(source: Path, target: Path, prior: str) -> None:
    """Write `source` to `target` (via a temporary name) with its CT corrected by `prior`."""
    table = pq.read_table(source)
    columns = {}
    for name in table.column_names:
        field = table.schema.field(name)
        if name == "ct":
            columns[name] = corrected_ct(table, prior)
        elif field.metadata is not None and b"madn.dtype" in field.metadata:
            columns[name] = np.array(tensor_column(table, name))
        else:
            columns[name] = table.column(name).to_numpy(zero_copy_only=False)
    partial = target.with_name(target.name + ".partial")
    write_shard(slices_table(columns, table.schema), partial)
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
