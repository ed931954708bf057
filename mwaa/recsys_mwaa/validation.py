"""Check a package before it goes to MWAA: zip layout and size, requirements, DAG import."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from recsys_mwaa import custom_constraints, mwaa_env
from recsys_mwaa.packaging import Package

MWAA_CONSTRAINT = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
)
VENDORED_CONSTRAINTS = mwaa_env.VENDORED_CONSTRAINTS  # one definition of where the vendored copy lives
# A package for a private network (local-runner/mwaa-local package-requirements) installs
# from plugins.zip: the wheels and this copy of the constraints, with no index.
MWAA_PLUGINS = "/usr/local/airflow/plugins"
PRIVATE_CONSTRAINT = f'--constraint "{MWAA_PLUGINS}/{VENDORED_CONSTRAINTS.name}"'
# A custom constraints file (one that keeps MWAA's essential pins), shipped in dags/ by
# packaging.build as AWS documents for a newer Amazon provider; see custom_constraints.
CUSTOM_CONSTRAINT = rf'--constraint "{re.escape(custom_constraints.MWAA_DAGS)}/([^"/]+\.txt)"'
# MWAA's image: Python 3.12 on Amazon Linux 2023 (glibc 2.34), x86_64.
MWAA_PYTHON_VERSION = "3.12"
MWAA_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
MAX_PLUGINS_BYTES = 1_000_000_000  # MWAA: keep plugins.zip under 1 GB (installs past 10 min are rolled back)
PACKAGE_NAME = "video_recommender"


def zip_problems(package: Package) -> list[str]:
    problems = []
    size = package.plugins_zip.stat().st_size
    if size >= MAX_PLUGINS_BYTES:
        problems.append(f"plugins.zip is {size:,} bytes; MWAA wants it under {MAX_PLUGINS_BYTES:,}")
    with zipfile.ZipFile(package.plugins_zip) as zf:
        names = zf.namelist()
        bad = zf.testzip()
    if bad:
        problems.append(f"plugins.zip: {bad} is corrupt")
    if f"{PACKAGE_NAME}/__init__.py" not in names:
        tops = sorted({n.split("/", 1)[0] for n in names})
        problems.append(
            f"plugins.zip must hold the contents of plugins/ at its root ({PACKAGE_NAME}/__init__.py); "
            f"top-level entries are {tops}"
        )
    unsafe = [n for n in names if n.startswith("/") or ".." in n.split("/")]
    if unsafe:
        problems.append(f"plugins.zip has unsafe paths: {unsafe[:3]}")
    caches = [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    if caches:
        problems.append(f"plugins.zip carries compiled caches: {caches[:3]}")
    return problems


def requirements_problems(package: Package, resolve: bool = True) -> list[str]:
    lines = package.requirements.read_text().splitlines()
    constraint_lines = [line for line in lines if re.match(r"\s*#?\s*(-c|--constraint)\s", line)]
    if constraint_lines == [PRIVATE_CONSTRAINT]:
        return _private_requirements_problems(package, lines, resolve)
    custom = re.fullmatch(CUSTOM_CONSTRAINT, constraint_lines[0]) if len(constraint_lines) == 1 else None
    if custom:
        constraints = package.dags / custom.group(1)
        if not constraints.is_file():
            return [f"requirements.txt names {custom_constraints.MWAA_DAGS}/{custom.group(1)}, which dags/ lacks"]
        if not custom.group(1).endswith(f"-{custom_constraints.digest(constraints.read_bytes())}.txt"):
            return [f"dags/{custom.group(1)} no longer matches the content hash in its name; run `recsys-mwaa package`"]
        problems = custom_constraints.essential_pin_problems(constraints)
        if problems or not resolve:
            return problems
    elif constraint_lines != [MWAA_CONSTRAINT]:
        return [
            f"requirements.txt must carry exactly MWAA's constraint line {MWAA_CONSTRAINT!r} "
            f"(or, for a private network, {PRIVATE_CONSTRAINT!r}, or a custom constraints file "
            f"'--constraint \"{custom_constraints.MWAA_DAGS}/<file>\"' shipped in dags/); found {constraint_lines}"
        ]
    else:
        constraints = VENDORED_CONSTRAINTS
    if not resolve:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "requirements.txt"
        local.write_text(
            "\n".join(f"--constraint {constraints}" if line == constraint_lines[0] else line for line in lines) + "\n"
        )
        # As MWAA's safe-pip-install does: its essential pins apply over any constraints file.
        essential = Path(tmp) / "mwaa_essential_constraints.txt"
        essential.write_text("".join(f"{n}=={v}\n" for n, v in custom_constraints.MWAA_ESSENTIAL_PINS.items()))
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check", "-r", str(local),
             "--constraint", str(essential), "apache-airflow==3.3.1"],
            capture_output=True, text=True,
        )  # fmt: skip
    if done.returncode:
        reason = [
            line
            for line in done.stdout.splitlines() + done.stderr.splitlines()
            if "ERROR" in line or "conflict" in line
        ]
        under = (
            "MWAA's constraints"
            if constraints == VENDORED_CONSTRAINTS
            else f"dags/{constraints.name} and MWAA's essential pins"
        )
        return [f"requirements.txt does not resolve under {under}: " + " | ".join(reason[-4:])]
    return []


PROBE = Path(__file__).with_name("mwaa_probe.py")


def dag_report(package: Package, python: Path | None = None, local_engine: Path | None = None) -> dict:
    """Load the package in the MWAA-exact environment as MWAA does (see mwaa_probe): plugins
    manager, DagBag, task-time imports and imports of packages the environment lacks.

    ``python`` defaults to the MWAA-exact environment's, built or reused for this package;
    ``local_engine`` to its folder of local-engine.txt's packages, which only modules of an
    ``engine`` package (the local backend's) may import.
    """
    if python is None:
        try:
            say = functools.partial(print, file=sys.stderr)
            python = mwaa_env.ensure(package, say=say)
            local_engine = mwaa_env.ensure_local_engine(python.parent.parent, say=say)
        except mwaa_env.MwaaEnvError as error:
            return {"errors": {"requirements.txt": str(error)}, "dags": [], "seconds": None}
    dags = package.dags.resolve()  # the probe runs in a temporary folder: a relative --dist must not break it
    with tempfile.TemporaryDirectory() as tmp:
        plugins = Path(tmp) / "plugins"
        with zipfile.ZipFile(package.plugins_zip) as zf:
            zf.extractall(plugins)
        # Only what MWAA's workers would see: no PYTHONPATH, no AIRFLOW__ settings of this shell.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("AIRFLOW__")}
        env |= {
            "AIRFLOW_HOME": str(Path(tmp) / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        done = subprocess.run(
            [str(python), "-P", str(PROBE), str(plugins), str(dags), str(local_engine or "")],
            capture_output=True, text=True, env=env, cwd=tmp,
        )  # fmt: skip
    if done.returncode:
        return {"errors": {"<probe>": done.stderr[-2000:]}, "dags": [], "seconds": None}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # Paths in the unpacked temporary folder are named as plugins.zip's entries.
    report["plugin_errors"] = {
        f"plugins.zip:{Path(k).relative_to(plugins)}" if k.startswith(str(plugins)) else k: v
        for k, v in report["plugin_errors"].items()
    }
    report["unlisted_imports"] = [
        line.replace("plugins/", "plugins.zip:", 1) if line.startswith("plugins/") else line
        for line in report["unlisted_imports"]
    ]
    report["errors"] = {**report["plugin_errors"], **report["dag_errors"]}
    report["errors"] |= {f"plugins.zip:{name.replace('.', '/')}.py (imported as a task would)": error
                         for name, error in report["module_errors"].items()}  # fmt: skip
    return report


def dag_problems(report: dict) -> list[str]:
    problems = [
        f"{path}: {error.strip().splitlines()[-1] if error.strip() else error}"
        for path, error in report["errors"].items()
    ]
    problems += [
        f"{line}, which requirements.txt does not install (nor MWAA's image)"
        for line in report.get("unlisted_imports", [])
    ]
    problems += [
        f"plugins.zip: the plugins manager registered {name!r} as a bare top-level module; "
        "list its folder in plugins/.airflowignore"
        for name in report.get("bare_modules", [])
    ]
    if report.get("main_replaced"):
        problems.append("plugins.zip: the plugins manager imported a __main__.py and replaced the process's __main__")
    if not report["dags"]:
        problems.append("no DAG found in the packaged dags/")
    return problems


def mwaa_platform_args() -> list[str]:
    """pip options that pick wheels for MWAA's platform, whatever machine runs pip."""
    args = ["--only-binary=:all:", "--python-version", MWAA_PYTHON_VERSION, "--implementation", "cp"]
    for platform in MWAA_PLATFORMS:
        args += ["--platform", platform]
    return args


def _find_links_folder(requirements_text: str) -> str | None:
    """The folder of plugins.zip that --find-links names ("" for the zip's root, AWS's own example), or None."""
    match = re.search(
        rf"^\s*(?:--find-links[=\s]|-f)\s*{re.escape(MWAA_PLUGINS)}(?:/(\S*?))?/?\s*$", requirements_text, re.M
    )
    if not match or "--no-index" not in [line.strip() for line in requirements_text.splitlines()]:
        return None
    return match.group(1) or ""


def offline_install_problems(requirements_text: str, wheels: Path) -> list[str]:
    """Whether the wheels in ``wheels`` alone install ``requirements_text`` on MWAA's platform (a dry run)."""
    folder = _find_links_folder(requirements_text)
    if folder is None:
        return [f"requirements.txt for a private network needs --no-index and --find-links {MWAA_PLUGINS}/<folder>"]
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "requirements.txt"
        text = requirements_text.replace(PRIVATE_CONSTRAINT, f'--constraint "{VENDORED_CONSTRAINTS}"')
        local.write_text(re.sub(rf"{re.escape(MWAA_PLUGINS)}(/\S*)?", str(wheels), text))
        done = subprocess.run(
            # --isolated and no PIP_* variables: only these wheels, not a find-links or index of this machine's.
            [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--disable-pip-version-check",
             "--ignore-installed", "--target", str(Path(tmp) / "target"), "-r", str(local), *mwaa_platform_args()],
            capture_output=True, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
        )  # fmt: skip
    if done.returncode:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        telling = [line for line in lines if re.search(r"depends on|No matching distribution|Could not find", line)]
        return ["the wheels do not install requirements.txt without an index: " + " | ".join((telling or lines)[-3:])]
    return []


def _private_requirements_problems(package: Package, lines: list[str], resolve: bool) -> list[str]:
    """A private-network package: constraints and wheels come from plugins.zip (see PRIVATE_CONSTRAINT)."""
    text = "\n".join(lines) + "\n"
    folder = _find_links_folder(text)
    if folder is None:
        return [f"requirements.txt for a private network needs --no-index and --find-links {MWAA_PLUGINS}/<folder>"]
    with zipfile.ZipFile(package.plugins_zip) as zf:
        names = zf.namelist()
        if VENDORED_CONSTRAINTS.name not in names:
            return [f"requirements.txt names {MWAA_PLUGINS}/{VENDORED_CONSTRAINTS.name}, which plugins.zip lacks"]
        if zf.read(VENDORED_CONSTRAINTS.name) != VENDORED_CONSTRAINTS.read_bytes():
            return [f"plugins.zip's {VENDORED_CONSTRAINTS.name} differs from MWAA's (requirements/)"]
        wheels = [n for n in names if n.endswith(".whl") and str(Path(n).parent) == (folder or ".")]
        if not wheels:
            return [f"--find-links {MWAA_PLUGINS}/{folder}: plugins.zip has no wheels in {folder or 'its root'}/"]
        if not resolve:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            zf.extractall(tmp, wheels)
            return offline_install_problems(text, Path(tmp) / folder if folder else Path(tmp))
