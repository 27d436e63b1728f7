"""Files that are either complete or absent: one atomic write for every writer of every package.

A result, a checkpoint or a data file is written to a temporary name beside its target, flushed
to disk, given the permissions the user's umask asks for, and renamed over the target; then the
directory entry is flushed too. A crash at any moment leaves the old file or the complete new
one, never a truncated one, and colleagues in the user's group can read what a run wrote on a
shared cluster file system (``mkstemp`` alone would leave every file at mode 0600).

``atomic_path`` serves any writer that takes a path (``torch.save``, ``h5py.File``,
``xarray.Dataset.to_netcdf``, ``numpy.savez`` given an open file); ``write_text_atomic`` and
``write_json_atomic`` are the two writers every package needs. The temporary file is created
with ``O_EXCL`` under a random name, so a symbolic link planted beside the target is never
followed. Each completed write is remembered, so that an interrupted command can say what it
saved (``saved_paths``).

``prepare_output_dir`` and ``check_output_file`` refuse an unusable output path before any
work; ``lock_folder`` keeps a second run from writing into a folder a run is using.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import socket
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared_hpc.errors import UserError
from shared_hpc.mpi import Comm, get_comm

__all__ = [
    "atomic_path",
    "check_output_file",
    "file_mode",
    "jsonable",
    "lock_folder",
    "prepare_output_dir",
    "saved_paths",
    "write_json_atomic",
    "write_text_atomic",
]

_saved: list[Path] = []


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (threads may write)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the current umask (0644 for the usual umask 022)."""
    return 0o666 & ~_umask()


def _fsync_path(path: Path) -> None:
    """Flush a file or a directory entry to disk; file systems that cannot are skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Args:
        path: The file to write.

    The writer in the ``with`` block writes the temporary file by name. When the block ends
    without an exception, the file is fsynced, given the umask's mode, renamed over ``path``
    and the directory is fsynced; when it raises, the temporary file is removed and ``path``
    is untouched. Parent directories are created.

    Example:
        >>> with atomic_path("run/best.pt") as tmp:  # doctest: +SKIP
        ...     torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(path.parent)
    _saved.append(path)


def prepare_output_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output folder ``path`` (and its parents) and check that it can be written.

    Called before any expensive work, so that an unusable ``--output`` costs one line, not a
    finished run that cannot be saved.

    Args:
        path: The folder.

    Raises:
        UserError: ``path`` is a file, cannot be created, or is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the folder {path}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into the folder {path}")
    return path


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that the file ``path`` can be written (its folder is created).

    Args:
        path: The file.

    Raises:
        UserError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a file to write")
    prepare_output_dir(path.parent if str(path.parent) else Path("."))
    return path


LOCK_NAME = ".lock"
"""The file in a run's folder that the running process holds a lock on."""

# errno values of file systems that do not offer locks (e.g. Lustre mounted without -o flock)
_NO_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def _try_lock(folder: Path) -> tuple[int | None, str | None]:
    """Lock ``folder``'s lock file: ``(fd, None)``, or ``(None, why not)``."""
    import fcntl

    lock_file = folder / LOCK_NAME
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, file_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in _NO_LOCKS:
            os.close(fd)
            warnings.warn(
                f"the file system of {folder} offers no locks; a second run on this folder "
                "would not be stopped",
                stacklevel=3,
            )
            return None, None
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        why = f"{folder} is in use by another run ({holder}); wait for it or choose another folder"
        return None, why
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd, None


@contextmanager
def lock_folder(path: str | os.PathLike[str], comm: Comm | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on the folder ``path`` while the block runs (collective).

    Two runs that write into one folder (a checkpoint, a run directory) would interleave their
    files and lose results silently; the second one is refused instead. Rank 0 takes the lock
    (``flock`` on ``path/.lock``, released also when the process dies) and every rank learns
    the outcome, so all raise the same ``UserError`` together. The folder is created.

    Args:
        path: The folder.
        comm: Ranks sharing the folder (default: ``get_comm()``).

    Raises:
        UserError: another process holds the lock.
    """
    comm = get_comm() if comm is None else comm
    folder = prepare_output_dir(path)
    fd, refusal = _try_lock(folder) if comm.Get_rank() == 0 else (None, None)
    refusal = comm.bcast(refusal, root=0)
    if refusal is not None:
        raise UserError(refusal)
    try:
        yield folder
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock; the file stays, removing it would race


def saved_paths() -> list[Path]:
    """Every file this process completed through ``atomic_path``, oldest first."""
    return list(_saved)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``atomic_path``).

    Args:
        path: The file.
        text: Its new content.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays, paths, dataclasses, sets, non-finite floats.

    NaN and infinities become ``None``, because strict JSON has no spelling for them.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # NumPy arrays and scalars, torch tensors
        return jsonable(obj.tolist())
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    raise TypeError(f"cannot store {type(obj).__name__} in JSON: {obj!r}")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically; values are converted by ``jsonable``.

    Args:
        path: The file.
        obj: Dicts, lists, numbers, strings, NumPy values, paths, dataclasses.
    """
    return write_text_atomic(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
