"""recsys-mwaa package / validate: deterministic plugins.zip, MWAA layout, clear failures."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import packaging, validation  # ruff: ignore[module-import-not-at-top-of-file]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "mwaa" / "recsys-mwaa"), *args], capture_output=True, text=True)


def test_two_package_runs_give_the_same_plugins_zip(tmp_path: Path) -> None:
    first = packaging.build(tmp_path / "a")
    (REPO / "plugins" / "video_recommender" / "__init__.py").touch()  # a newer mtime changes nothing
    second = packaging.build(tmp_path / "b")
    digest = [hashlib.sha256(p.plugins_zip.read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]
    assert first.manifest.read_text() == second.manifest.read_text()


def test_plugins_zip_has_the_contents_of_plugins_at_its_root(tmp_path: Path) -> None:
    package = packaging.build(tmp_path / "dist")
    with zipfile.ZipFile(package.plugins_zip) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert "video_recommender/__init__.py" in names and "video_recommender/engine/fm.py" in names
    assert names == sorted(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("plugins/")]
    assert {i.date_time for i in infos} == {packaging.ZIP_TIME} and {i.external_attr >> 16 for i in infos} == {0o100644}
    assert sorted(p.name for p in package.dags.iterdir()) == [".airflowignore", "recommender_workflow.py"]
    assert package.requirements.read_text() == (REPO / "requirements" / "requirements.txt").read_text()


def test_validate_passes_a_fresh_package_including_pips_resolution(tmp_path: Path) -> None:
    assert cli("package", "--out", str(tmp_path / "dist")).returncode == 0
    done = cli("validate", "--dist", str(tmp_path / "dist"))
    assert done.returncode == 0, done.stderr
    assert "valid for MWAA" in done.stdout and "video_recommender parsed in" in done.stdout


def test_validate_rejects_a_zip_with_a_top_folder(tmp_path: Path) -> None:
    package = packaging.build(tmp_path / "dist")
    buf = io.BytesIO()
    with zipfile.ZipFile(package.plugins_zip) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr("plugins/" + info.filename, src.read(info))  # what zipping the folder does
    package.plugins_zip.write_bytes(buf.getvalue())
    problems = validation.zip_problems(package)
    assert problems and "at its root" in problems[0] and "'plugins'" in problems[0]


def test_validate_rejects_requirements_without_mwaas_constraint_line(tmp_path: Path) -> None:
    package = packaging.build(tmp_path / "dist")
    package.requirements.write_text("apache-airflow-providers-amazon\n")
    assert "exactly MWAA's constraint line" in validation.requirements_problems(package, resolve=False)[0]


def test_validate_fails_on_a_dag_import_error_with_the_reason(tmp_path: Path) -> None:
    package = packaging.build(tmp_path / "dist")
    (package.dags / "broken.py").write_text("from airflow.sdk import dag\nimport no_such_module_here\n")
    done = cli("validate", "--dist", str(package.root), "--skip-resolution")
    assert done.returncode == 1
    assert "broken.py" in done.stderr and "no_such_module_here" in done.stderr


def test_validate_without_a_package_says_so(tmp_path: Path) -> None:
    done = cli("validate", "--dist", str(tmp_path / "nothing"))
    assert done.returncode == 2 and "run `recsys-mwaa package` first" in done.stderr


def test_help_lists_the_commands() -> None:
    done = cli("--help")
    assert done.returncode == 0 and "package" in done.stdout and "validate" in done.stdout


def test_package_constraints_ships_the_file_and_a_refused_one_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    from recsys_mwaa import cli as recsys_cli

    mwaa_file = (REPO / "requirements" / "constraints-3.3.1-py3.12.txt").read_text().splitlines()
    good = tmp_path / "constraints-newer-amazon.txt"
    good.write_text(
        "\n".join(line.replace("providers-amazon==9.34.0", "providers-amazon==9.35.0") for line in mwaa_file)
    )
    assert recsys_cli.main(["package", "--out", str(tmp_path / "dist"), "--constraints", str(good)]) == 0
    requirements = (tmp_path / "dist" / "requirements.txt").read_text()
    assert requirements.startswith('--constraint "/usr/local/airflow/dags/constraints-newer-amazon-')
    capsys.readouterr()

    number = next(i for i, line in enumerate(mwaa_file, 1) if line.startswith("celery=="))
    bad = tmp_path / "constraints-bad.txt"
    bad.write_text("\n".join("celery==5.5.0" if i == number else line for i, line in enumerate(mwaa_file, 1)))
    code = recsys_cli.main(["package", "--out", str(tmp_path / "bad-dist"), "--constraints", str(bad)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"FAIL: {bad}:{number}: 'celery==5.5.0' changes an essential pin")
    assert not (tmp_path / "bad-dist").exists()
