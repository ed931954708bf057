"""requirements.txt under MWAA's constraints: install it here, or bundle it for a private network.

On MWAA the constraint line names a URL on raw.githubusercontent.com; locally it is
swapped for the vendored copy of that file so nothing but the package index is needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from mwaa_local.paths import CONSTRAINTS, PYTHON, REPO

_CONSTRAINT_LINE = re.compile(r"\s*(-c|--constraint)[\s=]")
# MWAA's image: Python 3.12 on Amazon Linux 2023 (glibc 2.34), x86_64. The wheels are
# picked for that platform whatever this machine is, so a Mac can package them too.
MWAA_PYTHON_VERSION = "3.12"
MWAA_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# Where MWAA unpacks plugins.zip; requirements.txt of a private network points there.
MWAA_PLUGINS = "/usr/local/airflow/plugins"
WHEELS_FOLDER = "wheels"


def with_local_constraints(requirements: Path, constraints: Path = CONSTRAINTS) -> list[str]:
    """The lines of ``requirements`` with every constraint line pointing at ``constraints``."""
    lines = requirements.read_text().splitlines()
    out = [f'--constraint "{constraints}"' if _CONSTRAINT_LINE.match(line) else line for line in lines]
    if out == lines:
        raise SystemExit(f"{requirements}: no --constraint line; MWAA needs one (see requirements/requirements.txt)")
    return out


def install(requirements: Path, python: Path = PYTHON) -> int:
    """pip-install ``requirements`` into the runner's environment under the constraints; pip's exit code."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as local:
        local.write("\n".join(with_local_constraints(requirements)) + "\n")
    try:
        return subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", local.name]
        ).returncode
    finally:
        Path(local.name).unlink(missing_ok=True)


def _platform_args() -> list[str]:
    args = ["--only-binary=:all:", "--python-version", MWAA_PYTHON_VERSION, "--implementation", "cp"]
    for platform in MWAA_PLATFORMS:
        args += ["--platform", platform]
    return args


def private_requirements(requirements: Path) -> str:
    """requirements.txt for an MWAA environment without internet: wheels and constraints from plugins.zip."""
    lines = [
        "# Private network: every package comes from the wheels in plugins.zip (mwaa-local package-requirements).",
        "--no-index",
        f"--find-links {MWAA_PLUGINS}/{WHEELS_FOLDER}",
        f'--constraint "{MWAA_PLUGINS}/{CONSTRAINTS.name}"',
    ]
    lines += [line for line in requirements.read_text().splitlines() if not _CONSTRAINT_LINE.match(line)]
    return "\n".join(lines) + "\n"


def download_wheels(requirements: Path, dest: Path, python: Path = PYTHON) -> None:
    """Every wheel ``requirements`` needs on MWAA's platform, resolved under the constraints."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as local:
        local.write("\n".join(with_local_constraints(requirements)) + "\n")
    try:
        done = subprocess.run(
            [str(python), "-m", "pip", "download", "--disable-pip-version-check", "-q", "-r", local.name,
             "--dest", str(dest), *_platform_args()],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        Path(local.name).unlink(missing_ok=True)
    if done.returncode:
        reason = [line for line in done.stderr.splitlines() if line.strip()][-3:]
        raise SystemExit(
            f"{requirements}: pip could not get wheels for MWAA (Python {MWAA_PYTHON_VERSION}, manylinux x86_64; "
            f"a package with no such wheel must be built in the MWAA image): {' | '.join(reason)}"
        )


def check_offline_install(requirements_text: str, wheels: Path, python: Path = PYTHON) -> None:
    """Prove the wheels alone satisfy the private requirements.txt: a dry-run install with no index."""
    with tempfile.TemporaryDirectory() as scratch:
        req = Path(scratch) / "requirements.txt"
        req.write_text(
            requirements_text.replace(f"{MWAA_PLUGINS}/{WHEELS_FOLDER}", str(wheels)).replace(
                f"{MWAA_PLUGINS}/{CONSTRAINTS.name}", str(CONSTRAINTS)
            )
        )
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--dry-run",
             "--ignore-installed", "--target", str(Path(scratch) / "target"), "-r", str(req), *_platform_args()],
            capture_output=True, text=True,
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"the downloaded wheels do not install offline: {done.stderr.strip()[-600:]}")


def package_requirements(requirements: Path, out: Path, python: Path = PYTHON) -> dict:
    """Write ``out`` = a package for a private MWAA network: dags/, plugins.zip with wheels, requirements.txt.

    plugins.zip holds the project's plugins, ``wheels/`` and the constraints file; the
    requirements.txt installs from there with ``--no-index``. Written under a temporary
    name and renamed, so a failure leaves any earlier ``out`` whole.
    """
    sys.path.insert(0, str(REPO / "mwaa"))
    from recsys_mwaa import packaging

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        package = packaging.build(tmp / "package")
        wheels = tmp / WHEELS_FOLDER
        wheels.mkdir()
        download_wheels(requirements, wheels, python)
        text = private_requirements(requirements)
        check_offline_install(text, wheels, python)
        with zipfile.ZipFile(package.plugins_zip, "a") as zf:
            for wheel in sorted(wheels.glob("*.whl")):  # stored: wheels are zips already
                zf.writestr(
                    packaging.zip_entry(f"{WHEELS_FOLDER}/{wheel.name}", zipfile.ZIP_STORED), wheel.read_bytes()
                )
            zf.writestr(packaging.zip_entry(CONSTRAINTS.name), CONSTRAINTS.read_bytes())
        package.requirements.write_text(text)
        packaging.write_manifest(package)
        shutil.rmtree(wheels)
        shutil.rmtree(out, ignore_errors=True)
        package.root.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "root": out,
        "wheels": sorted(name for name in zipfile.ZipFile(out / "plugins.zip").namelist()
                         if name.startswith(f"{WHEELS_FOLDER}/")),
        "plugins_zip_bytes": (out / "plugins.zip").stat().st_size,
    }  # fmt: skip
