"""The MWAA-exact environment: a virtualenv holding only what MWAA would have.

``.venv`` also holds the local engine (numba, optuna), moto, pytest and playwright, so a
plugin or task that imports one of them works here and breaks on MWAA. ``.venv-mwaa`` is
built from nothing but the packaged ``requirements.txt`` under its constraints file (MWAA's,
or the custom one it names) and MWAA's essential pins, plus the packages MWAA's image
installs first (requirements/mwaa-image-3.3.1.txt). ``validate`` and the no-Docker local
runner run Airflow in it.

The local engine's packages (requirements/local-engine.txt, the one file a user adds on MWAA
to run the local backend there) go into a separate folder beside it, put on PYTHONPATH only
when the local backend is chosen, so the same environment serves both without a rebuild.

Both are cached by a stamp of their inputs, as scripts/bootstrap_venv.sh caches ``.venv``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from recsys_mwaa import custom_constraints
from recsys_mwaa.packaging import REPO, Package

MWAA_ENV = REPO / ".venv-mwaa"
IMAGE_PACKAGES = REPO / "requirements" / "mwaa-image-3.3.1.txt"
LOCAL_ENGINE = REPO / "requirements" / "local-engine.txt"
VENDORED_CONSTRAINTS = REPO / "requirements" / "constraints-3.3.1-py3.12.txt"
LOCAL_ENGINE_FOLDER = "local-engine"  # inside the environment's folder
STAMP = ".mwaa-env-stamp"
_CONSTRAINT = re.compile(r"\s*#?\s*(?:-c|--constraint)[\s=]+\"?([^\"\s]+)\"?\s*$")
# A private-network package installs from wheels inside plugins.zip; here the same pins come
# from the index (the wheels are PyPI's), so these lines are dropped.
_INDEX_OPTIONS = re.compile(r"\s*(--no-index|--find-links|-f\s)")


class MwaaEnvError(RuntimeError):
    """The environment could not be built: pip's own last lines say why."""


def _constraints_file(package: Package, named: str) -> Path:
    if named.startswith(custom_constraints.MWAA_DAGS + "/"):
        local = package.dags / named.removeprefix(custom_constraints.MWAA_DAGS + "/")
        if not local.is_file():
            raise MwaaEnvError(f"requirements.txt names {named}, which dags/ lacks")
        return local
    return VENDORED_CONSTRAINTS  # MWAA's URL, or the copy a private package ships (the same bytes)


def install_lines(package: Package) -> tuple[list[str], Path]:
    """requirements.txt as pip runs it here: the constraint line points at a local file."""
    lines, constraints = [], VENDORED_CONSTRAINTS
    for line in package.requirements.read_text().splitlines():
        match = _CONSTRAINT.match(line)
        if match:
            constraints = _constraints_file(package, match.group(1))
            continue
        if not _INDEX_OPTIONS.match(line):
            lines.append(line)
    return lines, constraints


def _essential_pins() -> str:
    return "".join(f"{name}=={version}\n" for name, version in custom_constraints.MWAA_ESSENTIAL_PINS.items())


def _base_python() -> str:
    # The interpreter .venv was made from (Python 3.12, as MWAA), not .venv's own python.
    return getattr(sys, "_base_executable", None) or sys.executable


def _stamp(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _pip(python: Path, args: list[str], what: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True
    )
    if done.returncode:
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-4:]
        raise MwaaEnvError(f"{what}: pip exit code {done.returncode}: " + " | ".join(tail))


def _uv(args: list[str], what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "uv", *args], capture_output=True, text=True)
    if done.returncode:
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-4:]
        raise MwaaEnvError(f"{what}: uv exit code {done.returncode}: " + " | ".join(tail))


def _pip_installs_nothing(python: Path, args: list[str], what: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _pip(python, ["install", "--dry-run", "-q", "--report", str(report), *args], what)
        extra = [
            f"{i['metadata']['name']}=={i['metadata']['version']}" for i in json.loads(report.read_text())["install"]
        ]
    if extra:
        raise MwaaEnvError(f"{what}: pip would still install {', '.join(extra)}")


def python_of(venv: Path = MWAA_ENV) -> Path:
    return venv / "bin" / "python"


def ensure(package: Package, venv: Path = MWAA_ENV, say: Callable[[str], None] = print) -> Path:
    """Create or reuse the MWAA-exact environment for ``package``; its python.

    A rebuild starts from an empty virtualenv, so nothing of an earlier requirements.txt stays.
    """
    lines, constraints = install_lines(package)
    stamp = _stamp(
        sys.version, "\n".join(lines), constraints.read_text(), IMAGE_PACKAGES.read_text(), _essential_pins()
    )
    python = python_of(venv)
    if python.exists() and (venv / STAMP).is_file() and (venv / STAMP).read_text() == stamp:
        return python
    say(f"{venv.name}: building the MWAA-exact environment (requirements.txt + MWAA's image packages only)")
    shutil.rmtree(venv, ignore_errors=True)
    # --seed: pip in it, as in MWAA's image (and for the checks below).
    _uv(["venv", "-q", "--seed", "-p", _base_python(), str(venv)], f"{venv.name}: creating it")
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(lines) + "\n")
        essential = Path(tmp) / "mwaa_essential_constraints.txt"
        essential.write_text(_essential_pins())
        # As MWAA: the image's packages and the user's requirements in one resolution under the
        # constraints file, with the essential pins over it (safe-pip-install).
        args = ["-r", str(IMAGE_PACKAGES), "-r", str(requirements), "-c", str(constraints), "-c", str(essential)]
        # uv, not pip, installs: 8 s against pip's 3 min here, and with every version pinned by the
        # constraints both give the same set (pip freeze of each, compared when this was written).
        # pip, which MWAA runs, then checks it: its dry run must find nothing to install or change.
        _uv(["pip", "install", "-q", "--python", str(python), *args], f"{venv.name}: installing requirements.txt")
        _pip(python, ["check"], f"{venv.name}: pip check")
        _pip_installs_nothing(python, args, f"{venv.name}: pip's own resolution")
    (venv / STAMP).write_text(stamp)
    return python


def ensure_local_engine(venv: Path = MWAA_ENV, say: Callable[[str], None] = print) -> Path:
    """The folder holding requirements/local-engine.txt's packages for ``venv``, for PYTHONPATH.

    Only what the environment lacks is installed there (pip's own resolution, asked with
    ``--dry-run --report``), at the versions the constraints allow, so it never shadows a
    package of the environment.
    """
    python = python_of(venv)
    folder = venv / LOCAL_ENGINE_FOLDER
    stamp = _stamp((venv / STAMP).read_text(), LOCAL_ENGINE.read_text())
    if (folder / STAMP).is_file() and (folder / STAMP).read_text() == stamp:
        return folder
    say(f"{venv.name}: adding the local engine's packages ({LOCAL_ENGINE.relative_to(REPO)})")
    shutil.rmtree(folder, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _pip(python, ["install", "--dry-run", "-q", "--report", str(report), "-r", str(LOCAL_ENGINE),
                      "-c", str(VENDORED_CONSTRAINTS)], "local-engine.txt: resolving")  # fmt: skip
        pins = [
            f"{item['metadata']['name']}=={item['metadata']['version']}"
            for item in json.loads(report.read_text())["install"]
        ]
        if pins:
            _pip(python, ["install", "-q", "--no-deps", "--target", str(folder), *pins], "local-engine.txt: installing")
    folder.mkdir(exist_ok=True)
    (folder / STAMP).write_text(stamp)
    return folder
