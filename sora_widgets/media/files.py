"""Files in the run folder written whole or not at all: through a `.part` file beside the target,
renamed once complete, and the `.part` files a killed process left behind cleaned up safely.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .._errors import GenerationError

_PARTIAL = re.compile(r"^\..+\.(?:(\d+)-)?[A-Za-z0-9_]+\.part$")  # .<name>.<pid>-<random>.part
_WRITING: set[str] = set()  # the .part files this process is writing now: remove_partials spares them
_WRITING_LOCK = threading.Lock()


@contextlib.contextmanager
def part_file(dest: Path) -> Iterator[str]:
    """A new empty `.<name>.<pid>-<random>.part` file beside `dest`, removed on the way out unless
    it was renamed; while it is in use, remove_partials in this process leaves it alone."""
    with _WRITING_LOCK:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}-", suffix=".part")
        _WRITING.add(os.path.realpath(tmp))
    os.close(fd)
    try:
        yield tmp
    finally:
        with _WRITING_LOCK:
            _WRITING.discard(os.path.realpath(tmp))
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write(dest: Path, data: bytes) -> None:
    """Write `data` to `dest` through a temporary file in the same folder, then rename."""
    with part_file(dest) as tmp:
        Path(tmp).write_bytes(data)
        os.replace(tmp, dest)


def link_or_copy(source: Path, dest: Path) -> Path:
    """Put the local file `source` at `dest` (a hard link, else a copy), atomically.

    For files the package made itself (the offline preview's renders) only: unlike `download`
    it takes any local path. Raises GenerationError(kind="download") when it cannot.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise GenerationError(f"cannot copy {source}: no such file", kind="download")
    try:
        if dest.is_file() and (dest.samefile(source) or dest.stat().st_size == source.stat().st_size):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with part_file(dest) as tmp:
            os.unlink(tmp)  # a hard link needs a free name; the random one stays ours
            try:
                os.link(source, tmp)
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
    except OSError as exc:
        raise GenerationError(f"could not save {dest.name} in {dest.parent}: {exc}",
                              kind="download") from exc
    return dest


def remove_partials(folder: Path, *, older_than_s: float = 0) -> int:
    """Delete the `.<name>.<pid>-<random>.part` files that killed downloads left in `folder` and
    its direct subfolders, if last written over `older_than_s` ago; returns how many.

    Other files are never touched, nor the `.part` files this process is writing now, nor those
    of another process that still runs (the pid in the name says whose it is), so two kernels
    sharing a run folder never cut each other's downloads.
    """
    folders = [Path(folder)]
    if not folders[0].is_dir():
        return 0
    with os.scandir(folders[0]) as entries:
        folders += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    cutoff = time.time() - older_than_s
    removed = 0
    for where in folders:
        with os.scandir(where) as entries:
            removed += sum(_remove_stale(e, cutoff) for e in entries
                           if (match := _PARTIAL.match(e.name)) and not _writer_alive(match.group(1)))
    return removed


def _writer_alive(pid_text: str | None) -> bool:
    """Whether another running process wrote a `.part` file (its pid is in the name)."""
    from .._owner import pid_alive

    return pid_text is not None and int(pid_text) != os.getpid() and pid_alive(int(pid_text))


def _remove_stale(entry: os.DirEntry[str], cutoff: float) -> bool:
    """Delete one `.part` file last written before `cutoff` unless this process is writing it."""
    with _WRITING_LOCK, contextlib.suppress(FileNotFoundError):  # gone meanwhile: not ours to count
        if (entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime <= cutoff
                and os.path.realpath(entry.path) not in _WRITING):
            os.unlink(entry.path)
            return True
    return False
