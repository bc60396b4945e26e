"""Atomic file writes and output-directory confinement."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["atomic_write_bytes", "atomic_write_text", "confined_path"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    A reader sees either the old file or the complete new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def confined_path(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """Resolve ``relative`` inside ``root``; refuse absolute paths and ``..`` escapes."""
    root_p = Path(root).resolve()
    rel = Path(relative)
    candidate = (root_p / rel).resolve()
    if rel.is_absolute() or (candidate != root_p and root_p not in candidate.parents):
        raise ConfigError("output path escapes the output directory", got=str(relative),
                          fix=f"use a relative path inside {root_p}")
    return candidate
