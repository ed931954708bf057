"""requirements.txt under MWAA's constraints: install it here, or bundle it for a private network.

On MWAA the constraint line names a URL on raw.githubusercontent.com; locally it is
swapped for the vendored copy of that file so nothing but the package index is needed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from mwaa_local.package import packaging, validation
from mwaa_local.paths import CONSTRAINTS, MWAA_CONSTRAINT_URL, PYTHON

_CONSTRAINT_LINE = re.compile(r"\s*(-c|--constraint)[\s=]")
# The wheels are picked for MWAA's platform (validation.MWAA_PLATFORMS) whatever this
# machine is, so a Mac can package them too.
MWAA_PYTHON_VERSION = validation.MWAA_PYTHON_VERSION
WHEELS_FOLDER = "wheels"
MWAA_INSTALL_TIMEOUT_SECONDS = 540  # USER_REQUIREMENTS_MAX_INSTALL_TIME in MWAA's image


def with_local_constraints(requirements: Path, constraints: Path = CONSTRAINTS) -> list[str]:
    """The lines of ``requirements`` with MWAA's constraint URL pointing at the vendored copy.

    Any other constraint line is an error: it would pass here against the vendored file
    and then resolve differently (or not at all) on MWAA.
    """
    lines = requirements.read_text().splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        if _CONSTRAINT_LINE.match(line):
            if MWAA_CONSTRAINT_URL not in line:
                raise SystemExit(
                    f"{requirements}, line {number}: {line.strip()!r}: expected MWAA's constraint URL "
                    f"{MWAA_CONSTRAINT_URL} (Airflow 3.3.1, Python 3.12)"
                )
            line = f'--constraint "{constraints}"'
        out.append(line)
    if out == lines:
        raise SystemExit(f"{requirements}: no --constraint line; MWAA needs one (see requirements/requirements.txt)")
    return out


def install(requirements: Path, python: Path = PYTHON, dry_run: bool = False) -> int:
    """pip-install ``requirements`` into the runner's environment under the constraints; pip's exit code.

    As MWAA, the install gets 9 minutes. ``dry_run`` resolves and downloads without
    changing the environment (test-requirements).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as local:
        local.write("\n".join(with_local_constraints(requirements)) + "\n")
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", local.name]
    command += ["--dry-run"] if dry_run else ["-q"]
    try:
        return subprocess.run(command, timeout=MWAA_INSTALL_TIMEOUT_SECONDS).returncode
    except subprocess.TimeoutExpired:
        print(f"pip ran past {MWAA_INSTALL_TIMEOUT_SECONDS} s, MWAA's limit for requirements.txt")
        return 124
    finally:
        Path(local.name).unlink(missing_ok=True)


def private_requirements(requirements: Path) -> str:
    """requirements.txt for an MWAA environment without internet: wheels and constraints from plugins.zip."""
    lines = [
        "# Private network: every package comes from the wheels in plugins.zip (mwaa-local package-requirements).",
        "--no-index",
        f"--find-links {validation.MWAA_PLUGINS}/{WHEELS_FOLDER}",
        validation.PRIVATE_CONSTRAINT,
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
             "--dest", str(dest), *validation.mwaa_platform_args()],
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


def package_requirements(requirements: Path, out: Path, python: Path = PYTHON) -> dict:
    """Write ``out`` = a package for a private MWAA network: dags/, plugins.zip with wheels, requirements.txt.

    plugins.zip holds the project's plugins, ``wheels/`` and the constraints file; the
    requirements.txt installs from there with ``--no-index``. Written under a temporary
    name and renamed, so a failure leaves any earlier ``out`` whole.
    """
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        package = packaging.build(tmp / "package")
        wheels = tmp / WHEELS_FOLDER
        wheels.mkdir()
        download_wheels(requirements, wheels, python)
        text = private_requirements(requirements)
        problems = validation.offline_install_problems(text, wheels)
        if problems:
            raise SystemExit(f"{requirements}: {problems[0]}")
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
