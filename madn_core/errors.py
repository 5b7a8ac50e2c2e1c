"""The library's own exceptions that need no torch, so a caller can catch them without paying
for `import torch` (the `madn` CLI catches them around every command)."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not fit what was asked of it."""
