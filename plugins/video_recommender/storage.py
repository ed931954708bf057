"""Storage helpers over path-like objects (``pathlib.Path`` or Airflow's ``ObjectStoragePath``).

Plain code receives path objects and never builds them from strings itself, except
through a ``resolve`` callable the caller hands in; in the DAG that callable is
``ObjectStoragePath`` (``file://`` locally, ``s3://`` on MWAA).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def write_atomically(path: PathLike, data: bytes) -> None:
    """Write ``data`` so that readers never see half a file.

    Locally: write a temporary sibling, then rename over the target. On object
    storage a single PUT is already all-or-nothing.
    """
    if is_local(path):
        target = local_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        path.write_bytes(data)


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
