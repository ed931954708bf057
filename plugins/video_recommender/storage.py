"""Storage helpers over path-like objects (``pathlib.Path`` or Airflow's ``ObjectStoragePath``).

Plain code receives path objects and never builds them from strings itself, except
through a ``resolve`` callable the caller hands in; in the DAG that callable is
``ObjectStoragePath`` (``file://`` locally, ``s3://`` on MWAA).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

PathLike = Any  # pathlib.Path or ObjectStoragePath: both offer open/read_bytes/iterdir/rglob/mkdir
Resolver = Callable[[str], PathLike]


def uri(path: PathLike) -> str:
    """The plain URI of a path, for requests and XCom: ``s3://bucket/key``, ``file:///...``.

    ``str()`` of an ``ObjectStoragePath`` made with a ``conn_id`` carries it as userinfo
    (``s3://aws_default@bucket/key``), which no AWS API accepts.
    """
    text = str(path)
    scheme, sep, rest = text.partition("://")
    if not sep:  # a plain local path stays one
        return text
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{tail}"


def is_local(path: PathLike) -> bool:
    return isinstance(path, Path) or getattr(path, "protocol", "file") in ("file", "local", "")


def local_path(path: PathLike) -> Path:
    """The OS path of a local path object."""
    if isinstance(path, Path):
        return path
    return Path(getattr(path, "path", str(path)))


class StorageError(OSError):
    """Writing to storage failed; the message names the path and the reason."""


# Leftovers of a killed writer are removed on the next write to their folder, but only
# when their writer is gone: a temporary name carries its process id, and a writer of
# this process (a thread beside us) or of a live process keeps its file. One without a
# process id (an older layout) goes once it is an hour old.
_TMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?(?P<token>[0-9a-f]{8})\.tmp$")
_STALE_SECONDS = 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files killed writers left in ``folder``; return them."""
    removed = []
    for candidate in folder.glob(".*.tmp"):
        match = _TMP.match(candidate.name)
        if not match or not candidate.is_file():
            continue
        pid = match["pid"]
        if pid is not None:
            stale = int(pid) != os.getpid() and not _alive(int(pid))
        else:
            stale = time.time() - candidate.stat().st_mtime > _STALE_SECONDS
        if stale:
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _storage_error(path: PathLike, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    error = StorageError(f"{uri(path)}: cannot write ({reason})")
    error.errno = exc.errno  # ENOSPC, EROFS ... for callers that branch on it
    return error


@contextmanager
def open_atomically(path: PathLike) -> Generator[BinaryIO]:
    """A binary file to write ``path`` through, published only when the block ends without error.

    Locally: a temporary sibling, fsynced, renamed over the target, and the folder
    fsynced, so a crash leaves the old file or the new one, never a torn or empty one
    (rename alone is atomic for readers, not durable). On object storage the bytes go
    to a local temporary file first and are uploaded once at the end (``put_file``:
    one PUT, or a multipart upload that S3 assembles only when every part is in), so
    a failed writer never leaves half an object and memory does not grow with the file.
    Errors of the storage name the path; an error raised by the caller's block passes
    through unchanged (and nothing is published).
    """
    body = _Body()
    try:
        if is_local(path):
            target = local_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(target.parent)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    with body:
                        yield fh
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
                _fsync_directory(target.parent)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            with tempfile.NamedTemporaryFile(prefix="upload-", suffix=".tmp") as spool:
                with body:
                    yield spool
                spool.flush()
                path.fs.put_file(spool.name, path.path)
    except StorageError:
        raise
    except OSError as exc:
        if exc is body.error:
            raise
        raise _storage_error(path, exc) from exc


class _Body:
    """Remembers the exception the caller's ``with`` block raised, to tell it from ours."""

    error: BaseException | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> bool:
        self.error = error
        return False


def write_atomically(path: PathLike, data: bytes) -> None:
    """Write ``data`` so that readers never see half a file, and say which path failed.

    Locally as ``open_atomically``; on object storage a single PUT of the bytes, which
    is already all-or-nothing.
    """
    if is_local(path):
        with open_atomically(path) as fh:
            fh.write(data)
        return
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise _storage_error(path, exc) from exc


def list_files(prefix: PathLike) -> list[PathLike]:
    """Every file at or under ``prefix`` (S3Prefix semantics for folder-like prefixes), sorted."""
    if prefix.is_file():
        return [prefix]
    if not prefix.exists():
        return []
    return sorted((p for p in prefix.rglob("*") if p.is_file() and not p.name.startswith(".")), key=str)


def relative_name(path: PathLike, prefix: PathLike) -> str:
    """``path`` relative to the folder ``prefix`` (just the file name when ``prefix`` is the file)."""
    full, base = str(path), str(prefix).rstrip("/")
    if full == base:
        return path.name
    return full[len(base) + 1 :] if full.startswith(base + "/") else path.name
