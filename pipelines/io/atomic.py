"""Writing output files so that readers never see half a file and a failure loses nothing that
was already there: write to a temporary name in the same folder, then rename onto the target."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from madn_core.umask import apply_umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside `path` (its name ends like `path`, so writers that go by the
    extension, e.g. `.png` or `.nii.gz`, still work). It replaces `path` when the block ends
    normally and is removed when the block raises; the parent folder is created."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=target.parent)
    os.close(handle)
    apply_umask(name)  # mkstemp makes 0600; the output gets the user's usual mode
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` through `atomic_path`; the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)
