"""The project packaged as MWAA receives it (mwaa/recsys_mwaa), with plugins.zip unpacked as MWAA does."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

from mwaa_local.paths import REPO

sys.path.insert(0, str(REPO / "mwaa"))
from recsys_mwaa import mwaa_env, packaging, validation

__all__ = ["build_and_unpack", "mwaa_env", "packaging", "validation"]


def build_and_unpack(plugins: Path, source: Path = REPO, out: Path | None = None) -> packaging.Package:
    """Build ``source``'s package (as ``recsys-mwaa package``; into ``out``, by default its dist/)
    and unpack its plugins.zip into ``plugins``, replacing what was there."""
    package = packaging.build(out or source / "dist", source)
    shutil.rmtree(plugins, ignore_errors=True)
    with zipfile.ZipFile(package.plugins_zip) as zf:
        zf.extractall(plugins)
    return package
