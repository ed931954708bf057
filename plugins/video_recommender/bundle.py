"""The package as a zip, for SageMaker Processing jobs to import (deterministic bytes)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
_TIME = (2020, 1, 1, 0, 0, 0)


def package_zip() -> bytes:
    """``video_recommender/...`` Python sources and data files; no caches."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".nbi", ".nbc"):
                continue
            info = zipfile.ZipInfo(f"{PACKAGE.name}/{path.relative_to(PACKAGE).as_posix()}", date_time=_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return out.getvalue()


def entry_script() -> bytes:
    return (PACKAGE / "processing_entry.py").read_bytes()
