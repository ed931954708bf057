"""package-requirements: wheels for MWAA's platform in plugins.zip, a --no-index requirements.txt."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))
sys.path.insert(0, str(REPO / "mwaa"))

from mwaa_local.requirements import package_requirements  # ruff: ignore[module-import-not-at-top-of-file]
from recsys_mwaa import validation  # ruff: ignore[module-import-not-at-top-of-file]
from recsys_mwaa.packaging import Package, sha256  # ruff: ignore[module-import-not-at-top-of-file]

MWAA_LINE = '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'


def test_wheels_are_for_mwaa_and_install_without_an_index(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    # The project's own packages beyond MWAA's image (numpy, pandas, pyarrow, polars, isal: validate checks
    # that the DAG's tasks can import them), and two more: python-slugify brings a dependency
    # (text-unidecode); setproctitle is compiled, so its wheel shows the platform: cp312
    # manylinux x86_64 whatever Python runs this test.
    requirements.write_text(f"{MWAA_LINE}\nnumpy\npandas\npyarrow\npolars\nisal==1.9.1\npython-slugify\nsetproctitle\n")
    out = tmp_path / "private"
    result = package_requirements(requirements, out)
    names = {name.split("-")[0] for name in result["wheels"]}
    assert {"wheels/numpy", "wheels/pandas", "wheels/pyarrow", "wheels/polars", "wheels/polars_runtime_32",
            "wheels/isal", "wheels/python_slugify", "wheels/setproctitle",
            "wheels/text_unidecode", "wheels/python_dateutil"} <= names, names  # fmt: skip
    assert "wheels/python_slugify-8.0.4-py2.py3-none-any.whl" in result["wheels"]  # the constrained version
    compiled = next(name for name in result["wheels"] if name.startswith("wheels/setproctitle-1.3.7-"))
    assert "-cp312-cp312-" in compiled and "manylinux" in compiled and compiled.endswith("x86_64.whl")
    names = zipfile.ZipFile(out / "plugins.zip").namelist()
    assert "video_recommender/__init__.py" in names and "constraints-3.3.1-py3.12.txt" in names
    lines = (out / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        "--no-index",
        "--find-links /usr/local/airflow/plugins/wheels",
        '--constraint "/usr/local/airflow/plugins/constraints-3.3.1-py3.12.txt"',
        "numpy",
        "pandas",
        "pyarrow",
        "polars",
        "isal==1.9.1",
        "python-slugify",
        "setproctitle",
    ]
    assert (out / "dags" / "recommender_workflow.py").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["plugins.zip"]["sha256"] == sha256(out / "plugins.zip")
    assert manifest["requirements.txt"]["sha256"] == sha256(out / "requirements.txt")

    # recsys-mwaa validate knows this form: the wheels in plugins.zip install it with no index.
    assert validation.requirements_problems(Package(out)) == []
    validated = subprocess.run(
        [sys.executable, str(REPO / "mwaa" / "recsys-mwaa"), "validate", "--dist", "private", "--skip-resolution"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert validated.returncode == 0 and "DAGs video_recommender parsed" in validated.stdout, validated.stderr
    # Without one of the wheels the check fails and says which package is missing.
    crippled = tmp_path / "crippled"
    crippled.mkdir()
    (crippled / "requirements.txt").write_bytes((out / "requirements.txt").read_bytes())
    with zipfile.ZipFile(out / "plugins.zip") as src, zipfile.ZipFile(crippled / "plugins.zip", "w") as dst:
        for info in src.infolist():
            if "text_unidecode" not in info.filename:
                dst.writestr(info, src.read(info))
    problems = validation.requirements_problems(Package(crippled))
    assert len(problems) == 1 and "without an index" in problems[0] and "text-unidecode" in problems[0], problems


def test_a_requirement_with_no_wheel_is_a_clear_error_and_the_earlier_package_stays(tmp_path: Path) -> None:
    out = tmp_path / "private"
    out.mkdir()
    (out / "requirements.txt").write_text("earlier\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{MWAA_LINE}\nsix==0.0.1\n")
    with pytest.raises(SystemExit, match=rf"{requirements}: pip could not get wheels for MWAA \(Python 3.12"):
        package_requirements(requirements, out)
    assert (out / "requirements.txt").read_text() == "earlier\n"
    assert not out.with_name("private.tmp").exists()


@pytest.mark.parametrize(
    ("text", "folder"),
    [
        ("--no-index\n--find-links /usr/local/airflow/plugins\nx\n", ""),  # AWS's documented form: the zip root
        ("--no-index\n-f /usr/local/airflow/plugins/wheels\n", "wheels"),
        ("--no-index\n--find-links=/usr/local/airflow/plugins/wheels/\n", "wheels"),
        ("--find-links /usr/local/airflow/plugins/wheels\n", None),  # without --no-index pip would use PyPI
        ("--no-index\n--find-links /tmp/wheels\n", None),
    ],
)
def test_private_requirements_name_a_folder_of_plugins_zip(text: str, folder: str | None) -> None:
    assert validation._find_links_folder(text) == folder
