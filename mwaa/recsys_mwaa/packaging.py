"""Build what MWAA reads from its bucket: dags/, plugins.zip and requirements.txt.

``plugins.zip`` holds the contents of ``plugins/`` at the zip root, as MWAA unpacks it
into ``/usr/local/airflow/plugins`` (so ``import video_recommender`` works), with
deterministic bytes: sorted entries, a fixed timestamp, fixed modes, no caches or
tests. Equal sources give an equal sha256, which is how ``deploy`` knows what changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from recsys_mwaa import custom_constraints

REPO = Path(__file__).resolve().parents[2]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
EXCLUDED_PARTS = {"__pycache__", "tests", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".nbi", ".nbc"}


@dataclass(frozen=True)
class Package:
    root: Path

    @property
    def plugins_zip(self) -> Path:
        return self.root / "plugins.zip"

    @property
    def requirements(self) -> Path:
        return self.root / "requirements.txt"

    @property
    def dags(self) -> Path:
        return self.root / "dags"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def files(self) -> dict[str, Path]:
        """Bucket key -> local file, for everything deploy uploads."""
        out = {"plugins.zip": self.plugins_zip, "requirements.txt": self.requirements}
        for path in sorted(self.dags.rglob("*")):
            if path.is_file():
                out[f"dags/{path.relative_to(self.dags).as_posix()}"] = path
        return out


def _included(path: Path, base: Path) -> bool:
    rel = path.relative_to(base)
    return path.is_file() and not (set(rel.parts) & EXCLUDED_PARTS) and path.suffix not in EXCLUDED_SUFFIXES


def zip_entry(name: str, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A zip entry with fixed time and mode, so equal contents give equal bytes."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = compress_type
    info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
    info.create_system = 3  # unix, so the mode is honoured
    return info


def plugins_zip_bytes(plugins: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(
            (p for p in plugins.rglob("*") if _included(p, plugins)), key=lambda p: p.relative_to(plugins).as_posix()
        ):
            zf.writestr(zip_entry(path.relative_to(plugins).as_posix()), path.read_bytes())
    return out.getvalue()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(package: Package) -> None:
    """manifest.json: sha256 and size of every file deploy uploads."""
    manifest = {key: {"sha256": sha256(path), "bytes": path.stat().st_size} for key, path in package.files().items()}
    package.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def build(out: Path, repo: Path = REPO, constraints: Path | None = None) -> Package:
    """Write the package to ``out`` (replaced whole) and return it.

    ``constraints``, or a local file named by the constraint line of requirements/requirements.txt,
    is a custom constraints file: checked against MWAA's essential pins (ConstraintsError
    otherwise), shipped in dags/ and named by requirements.txt as MWAA sees it, as AWS documents
    for a newer Amazon provider (see custom_constraints).
    """
    source = repo / "requirements" / "requirements.txt"
    custom = constraints or custom_constraints.local_constraints_file(source.read_text(), source.parent)
    if custom is not None:
        custom_constraints.check(custom)  # before anything is written
    package = Package(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    staged = Package(tmp)
    staged.plugins_zip.write_bytes(plugins_zip_bytes(repo / "plugins"))
    staged.dags.mkdir()
    if custom is None:
        shutil.copyfile(source, staged.requirements)
    else:
        # In dags/, not plugins.zip: the place AWS documents for a custom constraints file, and a
        # file deploy uploads by itself, whose changes the hashed name carries into requirements.txt.
        name = custom_constraints.shipped_name(custom)
        shutil.copyfile(custom, staged.dags / name)
        staged.requirements.write_text(custom_constraints.point_requirements_at(source.read_text(), name))
    for path in sorted((repo / "dags").iterdir()):
        if path.is_file() and (path.suffix == ".py" or path.name == ".airflowignore"):
            shutil.copyfile(path, staged.dags / path.name)
    write_manifest(staged)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return package
