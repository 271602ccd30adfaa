"""Where a log loader stopped: a small JSON state file, written atomically.

The state names the file by inode (and device), the byte offset just after the last
line consumed, and that line itself. On the next run :func:`resume_points` decides where
to read:

* same inode, file at least as long, and the line before the offset is the one recorded:
  go on from the offset (so nothing is loaded twice and nothing skipped);
* same inode but shorter, or a different line there: the file was truncated or rewritten
  (``copytruncate``), start again at 0;
* a different inode: the log was rotated. If the old file is still next to the new one
  (``gridftp.log.1``, ``gridftp.log-20240101`` ...) finish it from the offset first, then
  read the new file from 0.

esmond's loader pickled the last record and searched the log for it; this state is JSON
(never unpickled) and resumes by offset, so identical lines are never confused.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_VERSION = 1


class StateError(ValueError):
    """The state file exists but cannot be used; says why and what to do."""


@dataclass(slots=True)
class LoadState:
    """Position in a log file after the last line consumed."""

    path: str
    inode: int
    device: int
    offset: int
    last_line: str = ""
    loaded: int = 0
    version: int = STATE_VERSION


def read_state(path: Path) -> LoadState | None:
    """The state at ``path``, ``None`` if there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if raw[:1] in (b"\x80", b"(") or raw.startswith(b"ccopy_reg"):
        raise StateError(f"{path} is a pickle state of esmond's loader, not JSON: "
                         "delete it (the next run then loads the whole log) or pass another -p")
    try:
        data = json.loads(raw)
        if data.get("version") != STATE_VERSION:
            raise StateError(f"{path}: unknown state version {data.get('version')!r}")
        return LoadState(path=str(data["path"]), inode=int(data["inode"]),
                         device=int(data["device"]), offset=int(data["offset"]),
                         last_line=str(data.get("last_line", "")),
                         loaded=int(data.get("loaded", 0)))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"{path} is not a valid state file ({exc}): delete it to start "
                         "over") from None


def write_state(path: Path, state: LoadState, *, fsync: bool = False) -> None:
    """Replace the state file atomically (temporary file in the same folder, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(asdict(state), ensure_ascii=False).encode()
    with open(tmp, "wb") as handle:
        handle.write(data)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if fsync:
        with contextlib.suppress(OSError):
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


def delete_state(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class ReadFrom:
    """Read ``path`` from byte ``offset``; ``why`` is for the log."""

    path: Path
    offset: int
    why: str


def line_before(path: Path, offset: int, limit: int = 1 << 20) -> str | None:
    """The complete line that ends exactly at ``offset`` (without its newline)."""
    if offset <= 0:
        return None
    start = max(0, offset - limit)
    with open(path, "rb") as handle:
        handle.seek(start)
        chunk = handle.read(offset - start)
    if not chunk.endswith(b"\n"):
        return None
    body = chunk[:-1]
    cut = body.rfind(b"\n")
    return body[cut + 1:].decode("utf-8", "replace").rstrip("\r")


def _matches(path: Path, state: LoadState) -> bool:
    try:
        return path.stat().st_size >= state.offset and \
            line_before(path, state.offset) == state.last_line
    except OSError:
        return False


def _rotated_sibling(current: Path, state: LoadState) -> Path | None:
    """The file next to ``current`` that still has the recorded inode (the rotated log)."""
    with contextlib.suppress(OSError):
        for candidate in sorted(current.parent.iterdir()):
            if candidate == current or not candidate.name.startswith(current.name):
                continue
            info = candidate.stat()
            if info.st_ino == state.inode and info.st_dev == state.device:
                return candidate
    return None


def resume_points(current: Path, state: LoadState | None) -> list[ReadFrom]:
    """Which files to read, from where, to go on exactly after the last consumed line."""
    if state is None:
        return [ReadFrom(current, 0, "no state, reading from the start")]
    info = current.stat()
    if info.st_ino == state.inode and info.st_dev == state.device:
        if state.offset == 0 or _matches(current, state):
            return [ReadFrom(current, state.offset, f"resuming at byte {state.offset}")]
        return [ReadFrom(current, 0, "file was truncated or rewritten, reading from the start")]
    old = _rotated_sibling(current, state)
    if old is not None and _matches(old, state):
        return [ReadFrom(old, state.offset, f"log rotated: finishing {old} from byte "
                         f"{state.offset}"),
                ReadFrom(current, 0, "log rotated: reading the new file from the start")]
    return [ReadFrom(current, 0, "log rotated (the previous file is gone), reading the new "
                     "file from the start")]


def state_for(path: Path, offset: int, last_line: str, loaded: int) -> LoadState:
    info = path.stat()
    return LoadState(path=str(path), inode=info.st_ino, device=info.st_dev, offset=offset,
                     last_line=last_line, loaded=loaded)
