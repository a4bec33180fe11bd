"""Atomic file writes: every file dgmc writes appears whole or not at all, so a run
killed mid-write never leaves a truncated checkpoint, picture or report behind; and the
lock that keeps two processes from writing one directory at once."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed over `path` on success,
    removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o644)  # mkstemp's 0600 would make results private to the writer
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> Path:
    with atomic(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


LOCK_NAME = ".dgmc.lock"


class DirectoryBusy(UserError):
    """Another live dgmc process is writing the directory."""


@contextmanager
def locked(directory: Path) -> Iterator[Path]:
    """Hold `directory/.dgmc.lock` while writing the directory, so that two dgmc
    processes never mix their files there; a second writer is refused at once.

    The lock is an advisory `flock` on the file, which the kernel drops when its holder
    dies, even by SIGKILL: a lock file left by a killed process is stale by construction
    and is taken over. The file holds the owner's pid, for the message. It is removed on
    release; a process that opened it just before is then holding a removed file, which
    is why the lock is checked to still be the file at the path after it is taken."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(handle)
            raise DirectoryBusy(f"'{directory}' is being written by another dgmc process (pid {owner}): wait for "
                                "it to finish, or choose another output directory.") from None
        if _same_file(handle, path):
            break
        os.close(handle)  # the holder before us removed the file as we opened it: take the new one
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(handle)


def _same_file(handle: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False


def student_name(method: str, width: float, seed: int, lam: float | None = None) -> str:
    """The file stem of a student; the lambda is named only in an ablation (`lambdas_of`)."""
    return f"student_{method}_w{width:g}" + ("" if lam is None else f"_l{lam:g}") + f"_s{seed}"
