"""The MWAA-exact environment and `validate` run in it: what passes in .venv may not pass here."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import mwaa_env, packaging, validation  # ruff: ignore[module-import-not-at-top-of-file]

VENV_PYTHON = REPO / ".venv" / "bin" / "python"


def _has(python: Path, module: str, path: Path | None = None) -> bool:
    code = f"import importlib.util, sys; sys.path[:0] = {[str(path)] if path else []}; "
    code += f"sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([str(python), "-P", "-c", code]).returncode == 0


def test_the_environment_holds_mwaas_packages_and_nothing_of_venvs_extras(mwaa_python_env: tuple[Path, Path]) -> None:
    python, local_engine = mwaa_python_env
    versions = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version as v; "
         "print(v('apache-airflow'), v('apache-airflow-providers-amazon'), v('boto3'), v('watchtower'))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert versions == ["3.3.1", "9.34.0", "1.43.56", "3.4.0"]  # MWAA 3.3.1's image (shared/reference/mwaa.md §3)
    for extra in ("numba", "optuna", "moto", "pytest", "playwright", "ruff", "uv"):
        assert not _has(python, extra), extra
    # The local engine's packages sit in their own folder, used only on the local backend.
    assert _has(python, "numba", local_engine) and _has(python, "optuna", local_engine)
    assert not (local_engine / "numpy").exists()  # what the environment has is not installed twice


def test_a_second_ensure_reuses_the_environment(mwaa_python_env: tuple[Path, Path], tmp_path: Path) -> None:
    python, _ = mwaa_python_env
    stamp = python.parent.parent / mwaa_env.STAMP
    before = stamp.stat().st_mtime_ns
    said: list[str] = []
    assert mwaa_env.ensure(packaging.build(tmp_path / "dist"), say=said.append) == python
    assert said == [] and stamp.stat().st_mtime_ns == before


def _package_with(tmp_path: Path, edits: dict[str, str]) -> packaging.Package:
    """A fresh package whose plugins.zip has ``edits`` (entry -> text appended, or a new entry)."""
    package = packaging.build(tmp_path / "dist")
    with zipfile.ZipFile(package.plugins_zip) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    for name, text in edits.items():
        entries[name] = entries.get(name, b"") + text.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(packaging.zip_entry(name), data)
    package.plugins_zip.write_bytes(buffer.getvalue())
    return package


def test_a_fresh_package_loads_cleanly(mwaa_python_env: tuple[Path, Path], tmp_path: Path) -> None:
    python, local_engine = mwaa_python_env
    report = validation.dag_report(packaging.build(tmp_path / "dist"), python, local_engine)
    assert report["errors"] == {} and report["unlisted_imports"] == [] and report["bare_modules"] == []
    assert report["plugins"] == ["video_recommender"] and report["dags"] == ["video_recommender"]
    assert report["links"] == [
        "video_recommender.extra_links.RunReportLink",
        "video_recommender.extra_links.SageMakerJobConsoleLink",
        "video_recommender.extra_links.SageMakerJobLogsLink",
    ]
    assert validation.dag_problems(report) == []


def test_validate_fails_on_a_plugin_importing_a_package_only_venv_has(
    mwaa_python_env: tuple[Path, Path], tmp_path: Path
) -> None:
    python, local_engine = mwaa_python_env
    package = _package_with(tmp_path, {"recommender_plugin.py": "\nimport moto  # noqa\n"})
    line = len((REPO / "plugins" / "recommender_plugin.py").read_text().splitlines()) + 2
    # In .venv (which holds moto for the tests) the plugin loads: the check there proves nothing.
    in_venv = validation.dag_report(package, VENV_PYTHON, local_engine)
    assert in_venv["plugin_errors"] == {} and in_venv["unlisted_imports"] == []
    report = validation.dag_report(package, python, local_engine)
    assert list(report["plugin_errors"]) == ["plugins.zip:recommender_plugin.py"]
    assert "No module named 'moto'" in report["plugin_errors"]["plugins.zip:recommender_plugin.py"]
    assert report["unlisted_imports"] == [f"plugins.zip:recommender_plugin.py:{line}: imports 'moto'"]
    # The command itself: exit 1, naming the file.
    done = subprocess.run(
        [str(VENV_PYTHON), str(REPO / "mwaa" / "recsys-mwaa"), "validate", "--dist", str(package.root),
         "--skip-resolution"], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL: plugins.zip:recommender_plugin.py: No module named 'moto'" in done.stderr


def test_a_task_time_import_inside_a_function_is_named_with_its_line(
    mwaa_python_env: tuple[Path, Path], tmp_path: Path
) -> None:
    python, local_engine = mwaa_python_env
    lazy = "\n\ndef _only_when_the_task_runs():\n    import pytest  # noqa\n"
    package = _package_with(tmp_path, {"video_recommender/metrics.py": lazy})
    line = len((REPO / "plugins" / "video_recommender" / "metrics.py").read_text().splitlines()) + 4
    report = validation.dag_report(package, python, local_engine)
    assert report["errors"] == {}  # importing the module does not run the import
    assert report["unlisted_imports"] == [f"plugins.zip:video_recommender/metrics.py:{line}: imports 'pytest'"]
    problems = validation.dag_problems(report)
    assert problems == [
        f"plugins.zip:video_recommender/metrics.py:{line}: imports 'pytest', "
        "which requirements.txt does not install (nor MWAA's image)"
    ]


@pytest.mark.parametrize(("entry", "flagged"), [("video_recommender/metrics.py", True),
                                                ("video_recommender/engine/metrics_extra.py", False)])  # fmt: skip
def test_only_the_local_engine_may_import_local_engine_packages(
    mwaa_python_env: tuple[Path, Path], tmp_path: Path, entry: str, flagged: bool
) -> None:
    python, local_engine = mwaa_python_env
    package = _package_with(tmp_path, {entry: "\nimport numba  # noqa\n"})
    original = REPO / "plugins" / entry
    line = len(original.read_text().splitlines()) + 2 if original.exists() else 2
    report = validation.dag_report(package, python, local_engine)
    assert (f"plugins.zip:{entry}:{line}: imports 'numba'" in report["unlisted_imports"]) is flagged
    # A module outside engine/ is imported as a task would import it: numba is not there.
    assert ("plugins.zip:video_recommender/metrics.py (imported as a task would)" in report["errors"]) is flagged


def test_a_requirements_file_that_does_not_install_is_a_clear_failure(tmp_path: Path) -> None:
    package = packaging.build(tmp_path / "dist")
    package.requirements.write_text(package.requirements.read_text() + "numpy==0.0.1\n")
    with pytest.raises(mwaa_env.MwaaEnvError, match=r"installing requirements\.txt: uv exit code"):
        mwaa_env.ensure(package, venv=tmp_path / "venv-mwaa", say=lambda _: None)
