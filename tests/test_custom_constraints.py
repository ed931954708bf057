"""A custom constraints file: accepted when it keeps MWAA's essential pins, shipped in dags/, else refused at the line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "mwaa"))

from recsys_mwaa import custom_constraints, packaging, validation  # ruff: ignore[module-import-not-at-top-of-file]

MWAA_FILE = REPO / "requirements" / "constraints-3.3.1-py3.12.txt"
AMAZON_PIN = "apache-airflow-providers-amazon==9.34.0"


def custom_file(tmp_path: Path, old: str, new: str, name: str = "constraints-amazon-9.35.txt") -> tuple[Path, int]:
    """MWAA's constraints with the line ``old`` replaced by ``new``; the file and that line's number."""
    lines = MWAA_FILE.read_text().splitlines()
    number = lines.index(old) + 1
    lines[number - 1] = new
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path, number


def test_essential_pins_equal_mwaas_constraints_where_that_file_pins_them() -> None:
    pinned = {}
    for line in MWAA_FILE.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pinned[custom_constraints.canonicalize_name(name)] = version.strip()
    essential = custom_constraints.MWAA_ESSENTIAL_PINS
    assert {n: pinned[n] for n in essential if n in pinned} == {n: v for n, v in essential.items() if n in pinned}
    assert sorted(set(essential) - set(pinned)) == ["apache-airflow", "fluent-logger"]
    assert custom_constraints.essential_pin_problems(MWAA_FILE) == []


def test_a_file_bumping_the_amazon_provider_is_shipped_in_dags_and_named_by_requirements(tmp_path: Path) -> None:
    custom, _ = custom_file(tmp_path, AMAZON_PIN, "apache-airflow-providers-amazon==9.35.0")
    package = packaging.build(tmp_path / "dist", constraints=custom)

    shipped = [p for p in package.dags.iterdir() if p.suffix == ".txt"]
    assert len(shipped) == 1 and shipped[0].read_bytes() == custom.read_bytes()
    assert shipped[0].name.startswith("constraints-amazon-9.35-") and shipped[0].name.endswith(".txt")
    lines = package.requirements.read_text().splitlines()
    assert lines[0] == f'--constraint "/usr/local/airflow/dags/{shipped[0].name}"'
    assert lines[1:] == (REPO / "requirements" / "requirements.txt").read_text().splitlines()[1:]
    assert f"dags/{shipped[0].name}" in package.files()  # deploy uploads it before the UpdateEnvironment that reads it
    assert f"dags/{shipped[0].name}" in package.manifest.read_text()
    assert validation.requirements_problems(package, resolve=False) == []

    # An edit of the constraints changes requirements.txt, so deploy makes MWAA reinstall.
    custom.write_text(custom.read_text().replace("9.35.0", "9.36.0"))
    again = packaging.build(tmp_path / "dist2", constraints=custom)
    assert again.requirements.read_text() != package.requirements.read_text()


def test_pip_resolves_the_package_with_the_newer_provider_under_mwaas_essential_pins(tmp_path: Path) -> None:
    custom, _ = custom_file(tmp_path, AMAZON_PIN, "apache-airflow-providers-amazon==9.35.0")
    package = packaging.build(tmp_path / "dist", constraints=custom)
    assert validation.requirements_problems(package, resolve=True) == []


def test_pip_resolves_with_the_custom_file_not_mwaas(tmp_path: Path) -> None:
    custom, _ = custom_file(tmp_path, AMAZON_PIN, "apache-airflow-providers-amazon==9.35.0")
    custom.write_text(custom.read_text().replace("\nboto3==1.43.56\n", "\nboto3==1.40.0\n"))  # 9.35.0 needs >=1.41
    package = packaging.build(tmp_path / "dist", constraints=custom)
    problems = validation.requirements_problems(package, resolve=True)
    shipped = package.requirements.read_text().split("/usr/local/airflow/dags/", 1)[1].split('"')[0]
    assert len(problems) == 1
    assert problems[0].startswith(f"requirements.txt does not resolve under dags/{shipped} and MWAA's essential pins")


def test_requirements_txt_naming_a_local_file_packages_the_same_way(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "requirements").mkdir(parents=True)
    (repo / "plugins").symlink_to(REPO / "plugins")
    (repo / "dags").symlink_to(REPO / "dags")
    custom_file(repo / "requirements", AMAZON_PIN, "apache-airflow-providers-amazon==9.35.0", "constraints-custom.txt")
    body = (REPO / "requirements" / "requirements.txt").read_text().splitlines()[1:]
    (repo / "requirements" / "requirements.txt").write_text("\n".join(['-c "constraints-custom.txt"', *body]) + "\n")

    package = packaging.build(tmp_path / "dist", repo=repo)
    first = package.requirements.read_text().splitlines()[0]
    assert first.startswith('--constraint "/usr/local/airflow/dags/constraints-custom-')
    assert validation.requirements_problems(package, resolve=False) == []


def test_a_file_changing_airflows_pin_is_refused_with_the_line(tmp_path: Path) -> None:
    custom, number = custom_file(tmp_path, AMAZON_PIN, "apache-airflow==3.3.0", "constraints-bad.txt")
    with pytest.raises(custom_constraints.ConstraintsError) as caught:
        packaging.build(tmp_path / "dist", constraints=custom)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{custom}:{number}: 'apache-airflow==3.3.0' ")
    assert "MWAA requires apache-airflow==3.3.1" in message
    assert not (tmp_path / "dist").exists() and not (tmp_path / "dist.tmp").exists()


def test_validate_refuses_a_shipped_file_that_changes_an_essential_pin(tmp_path: Path) -> None:
    package = packaging.build(tmp_path / "dist")
    bad, number = custom_file(tmp_path, "SQLAlchemy==2.0.51", "SQLAlchemy==2.0.52")
    name = custom_constraints.shipped_name(bad)
    (package.dags / name).write_bytes(bad.read_bytes())
    package.requirements.write_text(custom_constraints.point_requirements_at(package.requirements.read_text(), name))
    problems = validation.requirements_problems(package, resolve=False)
    assert problems == [
        f"{package.dags / name}:{number}: 'SQLAlchemy==2.0.52' changes an essential pin; MWAA requires "
        "SQLAlchemy==2.0.51 (mwaa_essential_constraints.txt, enforced over any constraints file)"
    ]
