"""Modes that honour the user's umask for files and folders made through `tempfile` (which
creates them 0600 and 0700 whatever the umask), so that outputs renamed into place are as
readable to other users and workers as any file the user writes."""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask, read from /proc on Linux (no window in which it is changed); elsewhere
    set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike[str]) -> None:
    """Give a file made by `tempfile.mkstemp` mode 0666 & ~umask, a folder made by
    `tempfile.mkdtemp` 0777 & ~umask."""
    base = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, base & ~current_umask())
