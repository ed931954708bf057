"""The runner's test-startup-script and test-requirements verbs (MWAA's rules, honest exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local import database  # ruff: ignore[module-import-not-at-top-of-file]
from mwaa_local.startup import run_startup_script  # ruff: ignore[module-import-not-at-top-of-file]


def test_startup_script_exports_are_kept_except_mwaas_protected_ones(tmp_path: Path) -> None:
    script = tmp_path / "startup.sh"
    script.write_text(
        "export RECOMMENDER_BACKEND=sagemaker\nexport PYTHONPATH=/x\nexport MWAA__CORE__A=1\nexport ECS_Y=2\n"
    )
    assert run_startup_script(script) == {"RECOMMENDER_BACKEND": "sagemaker"}


def test_failing_or_slow_startup_scripts_are_errors(tmp_path: Path) -> None:
    failing = tmp_path / "fail.sh"
    failing.write_text("echo starting\nfalse\n")
    with pytest.raises(SystemExit, match="exited with 1"):
        run_startup_script(failing)
    slow = tmp_path / "slow.sh"
    slow.write_text("sleep 5\n")
    with pytest.raises(SystemExit, match="still running after 1 s"):
        run_startup_script(slow, timeout=1)


def test_test_requirements_exits_non_zero_when_pip_fails(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"\n'
        "numpy==0.0.1-does-not-exist\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mwaa_local", "test-requirements", str(requirements)],
        capture_output=True, text=True, cwd=REPO / "local-runner",
    )  # fmt: skip
    assert done.returncode != 0 and "pip failed with exit code" in done.stdout


def test_postgres_asked_but_not_available_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "postgres_bin", lambda: None)
    with pytest.raises(SystemExit, match=r"--db postgres: no PostgreSQL here .* apt-get install postgresql"):
        database.Database("postgres", tmp_path).start()
    assert not (tmp_path / "postgres").exists()


@pytest.mark.skipif(os.geteuid() != 0 or database.postgres_bin() is None, reason="needs root and PostgreSQL")
def test_as_root_a_home_the_postgres_user_cannot_reach_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)  # pytest's folders are closed to other users
    db = database.Database("postgres", tmp_path / "home")
    with pytest.raises(SystemExit, match=r"the 'postgres' user cannot reach .*choose a --home"):
        db.start()
    assert db.pids() == []


def test_sqlite_and_url_databases_need_no_server(tmp_path: Path) -> None:
    sqlite = database.Database("sqlite", tmp_path)
    sqlite.start()
    assert sqlite.sql_alchemy_conn() == f"sqlite:///{tmp_path / 'airflow.db'}" and sqlite.pids() == []
    url = database.Database("url", tmp_path, "postgresql+psycopg2://u:p@db:5432/airflow")
    assert url.sql_alchemy_conn().endswith("@db:5432/airflow") and not url.stop() and not url.reset()
