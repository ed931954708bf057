"""Check a package before it goes to MWAA: zip layout and size, requirements, DAG import."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from recsys_mwaa.packaging import REPO, Package

MWAA_CONSTRAINT = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
)
VENDORED_CONSTRAINTS = REPO / "requirements" / "constraints-3.3.1-py3.12.txt"
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
    if constraint_lines != [MWAA_CONSTRAINT]:
        return [
            f"requirements.txt must carry exactly MWAA's constraint line {MWAA_CONSTRAINT!r}; found {constraint_lines}"
        ]
    if not resolve:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "requirements.txt"
        local.write_text(
            "\n".join(f"--constraint {VENDORED_CONSTRAINTS}" if line == MWAA_CONSTRAINT else line for line in lines)
            + "\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--disable-pip-version-check", "-r", str(local),
             "apache-airflow==3.3.1"],
            capture_output=True, text=True,
        )  # fmt: skip
    if done.returncode:
        reason = [
            line
            for line in done.stdout.splitlines() + done.stderr.splitlines()
            if "ERROR" in line or "conflict" in line
        ]
        return ["requirements.txt does not resolve under MWAA's constraints: " + " | ".join(reason[-4:])]
    return []


PROBE = """
import json, sys, time
start = time.perf_counter()
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags),
                  "seconds": time.perf_counter() - start}))
"""


def dag_report(package: Package) -> dict:
    """Import the packaged DAGs with the packaged plugins.zip unpacked as MWAA does."""
    with tempfile.TemporaryDirectory() as tmp:
        plugins = Path(tmp) / "plugins"
        with zipfile.ZipFile(package.plugins_zip) as zf:
            zf.extractall(plugins)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("AIRFLOW__")}
        env |= {
            "AIRFLOW_HOME": str(Path(tmp) / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(package.dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        done = subprocess.run(
            [sys.executable, "-c", PROBE, str(package.dags)], capture_output=True, text=True, env=env, cwd=tmp
        )
    if done.returncode:
        return {"errors": {"<import>": done.stderr[-2000:]}, "dags": [], "seconds": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def dag_problems(report: dict) -> list[str]:
    problems = [
        f"{path}: {error.strip().splitlines()[-1] if error.strip() else error}"
        for path, error in report["errors"].items()
    ]
    if not report["dags"]:
        problems.append("no DAG found in the packaged dags/")
    return problems
