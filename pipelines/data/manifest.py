"""The subject manifest: a CSV describing paired CT/MRI volumes, synthetic or real.

Required columns: `subject_id`, `has_metal` (true/false, 1/0, yes/no), `ct`, `mri` (paths to a
NIfTI file or a DICOM series folder, relative to the manifest's folder or absolute). Optional:
`implant_side` (left/right/both, empty when none), `labels` (muscle labels on the MRI's grid, see
docs/data.md), `metal_mask` (on the CT's grid; when absent metal is segmented by an HU threshold),
`ct_clean` (CT ground truth without artefacts, CT grid) and `mri_clean` (MRI grid).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_COLUMNS = ("subject_id", "has_metal", "ct", "mri")
OPTIONAL_FILE_COLUMNS = ("labels", "metal_mask", "ct_clean", "mri_clean")
FILE_COLUMNS = ("ct", "mri", *OPTIONAL_FILE_COLUMNS)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class ManifestError(ValueError):
    """A manifest or one of its subjects is unusable; the message names the file and subject."""


@dataclass(frozen=True)
class SubjectEntry:
    """One manifest row. files: role ("ct", "mri", "labels", ...) -> absolute path."""

    subject_id: str
    has_metal: bool
    implant_side: str
    files: dict[str, Path] = field(default_factory=dict)


def _parse_bool(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ManifestError(f"{where}: has_metal must be true/false, got {text!r}")


def read_manifest(path: str | os.PathLike[str]) -> list[SubjectEntry]:
    """Parse and check a manifest: columns, unique ids, booleans and that every file exists."""
    manifest = Path(path)
    if not manifest.is_file():
        raise ManifestError(f"manifest {manifest} does not exist")
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ManifestError(
                f"manifest {manifest}: missing column(s) {', '.join(missing)}; "
                f"expected {', '.join(REQUIRED_COLUMNS)} (optional: implant_side, "
                f"{', '.join(OPTIONAL_FILE_COLUMNS)})"
            )
        rows = list(reader)
    if not rows:
        raise ManifestError(f"manifest {manifest} has no subjects")
    base = manifest.resolve().parent
    entries: list[SubjectEntry] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        subject = (row.get("subject_id") or "").strip()
        where = f"manifest {manifest} line {line}"
        if not subject:
            raise ManifestError(f"{where}: empty subject_id")
        if subject in seen:
            raise ManifestError(f"{where}: duplicate subject_id {subject!r}")
        seen.add(subject)
        files: dict[str, Path] = {}
        for role in FILE_COLUMNS:
            value = (row.get(role) or "").strip()
            if not value:
                if role in REQUIRED_COLUMNS:
                    raise ManifestError(f"{where}: subject {subject} has no {role} path")
                continue
            file = Path(value) if Path(value).is_absolute() else base / value
            if not file.exists():
                raise ManifestError(f"subject {subject}: {role} file {file} does not exist")
            files[role] = file
        side = (row.get("implant_side") or "").strip().lower()
        if side not in ("", "left", "right", "both", "none"):
            raise ManifestError(
                f"{where}: implant_side must be left, right, both or empty, got {side!r}"
            )
        entries.append(
            SubjectEntry(
                subject_id=subject,
                has_metal=_parse_bool(row.get("has_metal") or "", f"{where} ({subject})"),
                implant_side="" if side == "none" else side,
                files=files,
            )
        )
    return entries
