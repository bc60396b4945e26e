"""In-place update of a scorecard section in an existing model card (``README.md``), between markers.

Only the bytes between the two markers change; every other byte of the file stays identical. The
update is idempotent (a second call with the same scorecard writes nothing) and atomic (a reader
sees the old file or the new one, never a half-written one).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import as_record

__all__ = ["update_model_card", "START_MARKER", "END_MARKER"]

START_MARKER = "<!-- aisec-lab:scorecard:start -->"
END_MARKER = "<!-- aisec-lab:scorecard:end -->"


def _render_markdown(record: dict) -> str:
    from ..scorecard.render.markdown import render_markdown

    return render_markdown(record)


def _check_markers(start: Any, end: Any) -> None:
    for name, m in (("start_marker", start), ("end_marker", end)):
        if not isinstance(m, str) or not m.strip():
            raise ConfigError(f"{name} must be a non-empty string", got=m, fix=f"leave {name} at its default")
        if "\n" in m or "\r" in m:
            raise ConfigError(f"{name} must fit on one line", got=m, fix=f"leave {name} at its default")
    if start in end or end in start:
        raise ConfigError("the start and end markers must differ and neither may contain the other",
                          got=(start, end), fix="leave the markers at their defaults")


def _line_of(data: bytes, index: int) -> int:
    return data.count(b"\n", 0, index) + 1


def _atomic_replace(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and an atomic rename, keeping the file's mode."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def update_model_card(path: str | os.PathLike, sc: Any, *, start_marker: str = START_MARKER,
                      end_marker: str = END_MARKER) -> bool:
    """Insert or replace the scorecard section of the model card at ``path``; return whether it changed.

    The section is ``start_marker``, the Markdown of the scorecard
    (:func:`aisec_lab.scorecard.render.markdown.render_markdown`), then ``end_marker``, each on its
    own line. When the file has both markers once, in that order, what lies between them is replaced;
    when it has neither, the section is appended at the end (after a blank line); a missing file is
    created. Every byte outside the section is kept as it was, the file's line endings (LF or CRLF)
    are used for the section, and the write is atomic. Calling it again with the same scorecard
    changes nothing and returns ``False``. A marker that appears alone, twice, or an end marker
    before the start marker is a :class:`~aisec_lab.errors.ConfigError` and leaves the file untouched.
    """
    _check_markers(start_marker, end_marker)
    record = as_record(sc)
    target = Path(os.fspath(path)).expanduser()
    if target.is_dir():
        raise ConfigError("the model card path is a directory", got=str(target),
                          fix=f"pass the card file itself, e.g. {target / 'README.md'}")
    target = target.resolve()  # a symlinked README is updated in place, not replaced by a regular file
    try:
        old = target.read_bytes()
        exists = True
    except FileNotFoundError:
        old, exists = b"", False

    markdown = _render_markdown(record)
    if not isinstance(markdown, str):
        raise ConfigError("render_markdown must return a string", got=type(markdown).__name__)
    if start_marker in markdown or end_marker in markdown:
        raise ConfigError("the rendered scorecard contains a section marker, so the next update could not find "
                          "its section", got="a marker inside the Markdown (from the model name or a parameter?)",
                          fix="rename the model or pass other start_marker/end_marker")

    crlf = b"\r\n" in old and old.count(b"\n") == old.count(b"\r\n")
    nl = "\r\n" if crlf else "\n"
    body = "\n".join(markdown.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n"))
    section = f"{start_marker}\n{body}\n{end_marker}".replace("\n", nl).encode("utf-8")

    start_b, end_b = start_marker.encode("utf-8"), end_marker.encode("utf-8")
    n_start, n_end = old.count(start_b), old.count(end_b)
    if n_start == 0 and n_end == 0:
        if not old:
            sep = b""
        elif old.endswith(nl.encode() * 2):
            sep = b""
        elif old.endswith(b"\n"):
            sep = nl.encode()
        else:
            sep = nl.encode() * 2
        new = old + sep + section + nl.encode()
    elif n_start == 1 and n_end == 1 and old.index(start_b) < old.index(end_b):
        i = old.index(start_b)
        j = old.index(end_b) + len(end_b)
        new = old[:i] + section + old[j:]
    else:
        where = [f"{name} x{count} (line {', '.join(str(_line_of(old, k)) for k in _positions(old, m))})"
                 if count else f"{name} x0"
                 for name, m, count in (("start marker", start_b, n_start), ("end marker", end_b, n_end))]
        raise ConfigError(
            f"the model card {target} does not have exactly one scorecard section",
            got="; ".join(where),
            fix=f"keep exactly one {start_marker!s} line followed by one {end_marker!s} line (or remove both "
                "to append a fresh section), then run again",
        )

    if exists and new == old:
        return False
    _atomic_replace(target, new)
    return True


def _positions(data: bytes, needle: bytes) -> list[int]:
    out, k = [], data.find(needle)
    while k != -1:
        out.append(k)
        k = data.find(needle, k + 1)
    return out
