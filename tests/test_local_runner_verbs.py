"""The runner's test-startup-script and test-requirements verbs (MWAA's rules, honest exit codes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local import database  # ruff: ignore[module-import-not-at-top-of-file]
from mwaa_local.components import Runner  # ruff: ignore[module-import-not-at-top-of-file]
from mwaa_local.startup import run_startup_script  # ruff: ignore[module-import-not-at-top-of-file]


def test_startup_script_exports_are_kept_except_mwaas_protected_ones(tmp_path: Path) -> None:
    script = tmp_path / "startup.sh"
    script.write_text(
        "export RECOMMENDER_BACKEND=sagemaker\nexport PYTHONPATH=/x\nexport MWAA__CORE__A=1\n"
        "export ECS_CONTAINER_METADATA_URI=/y\nexport ECS_OWN=2\nexport AWS_DEFAULT_REGION=eu-west-1\n"
    )
    # MWAA keeps ECS_ names other than its listed ones; it drops AWS_DEFAULT_REGION.
    assert run_startup_script(script) == {"RECOMMENDER_BACKEND": "sagemaker", "ECS_OWN": "2"}


def test_startup_script_runs_like_mwaas_wrapper(tmp_path: Path) -> None:
    """No set -e (a failing command does not stop it); exit still hands back the environment."""
    script = tmp_path / "startup.sh"
    script.write_text(
        'false\nexport AFTER_FAILURE=1\nif [ "$MWAA_AIRFLOW_COMPONENT" = worker ]; then export ON_WORKER=1; fi\n'
        "exit 0\nexport NEVER=1\n"
    )
    assert run_startup_script(script, component="worker") == {"AFTER_FAILURE": "1", "ON_WORKER": "1"}
    assert run_startup_script(script, component="webserver") == {"AFTER_FAILURE": "1"}


def test_slow_startup_scripts_are_errors(tmp_path: Path) -> None:
    slow = tmp_path / "slow.sh"
    slow.write_text("sleep 5\n")
    with pytest.raises(SystemExit, match="still running after 1 s"):
        run_startup_script(slow, timeout=1)


MWAA_LINE = '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'


def run_test_requirements(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "mwaa_local", "test-requirements", str(requirements)],
        capture_output=True, text=True, cwd=REPO / "local-runner",
    )  # fmt: skip


def test_test_requirements_exits_non_zero_when_the_constraints_forbid_a_pin(tmp_path: Path) -> None:
    done = run_test_requirements(tmp_path, f"{MWAA_LINE}\nnumpy==1.26.4\n")  # MWAA pins numpy 2.5.1
    assert done.returncode != 0 and "pip failed with exit code" in done.stdout
    assert "numpy" in done.stdout + done.stderr


def test_test_requirements_passes_the_projects_file_without_changing_the_environment(tmp_path: Path) -> None:
    done = run_test_requirements(tmp_path, (REPO / "requirements" / "requirements.txt").read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resolves and downloads under MWAA's constraints" in done.stdout and "Would install" not in done.stdout


def test_another_constraints_url_is_refused_with_its_line(tmp_path: Path) -> None:
    other = '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.2.1/constraints-3.12.txt"'
    done = run_test_requirements(tmp_path, f"numpy\n{other}\n")
    assert done.returncode != 0 and "requirements.txt, line 2:" in done.stderr and "constraints-3.3.1" in done.stderr


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
    assert url.sql_alchemy_conn().endswith("@db:5432/airflow") and not url.stop()
    with pytest.raises(SystemExit, match="not the runner's own cluster"):
        url.reset()  # a server the user runs is never deleted


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        runner = Runner(tmp_path / "home", taken.getsockname()[1])
        with pytest.raises(SystemExit, match=r"127\.0\.0\.1:\d+ is in use .*choose --port"):
            runner.start()
    assert not (tmp_path / "home" / "pids").exists()


def test_a_stale_pid_record_is_never_signalled(tmp_path: Path) -> None:
    """A recorded PID now used by another process (here: this test's own) is not the runner's."""
    runner = Runner(tmp_path / "home")
    (runner.home / "pids").mkdir(parents=True)
    (runner.home / "pids" / "scheduler.json").write_text(json.dumps({"pid": os.getpid(), "created": 1.0}))
    (runner.home / "pids" / "triggerer.json").write_text("")  # a record cut short
    assert runner.running() == {}
    assert runner.stop() == []  # and this process is still here to assert it
    assert not list((runner.home / "pids").glob("*.json"))
