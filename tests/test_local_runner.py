"""The no-Docker local runner on PostgreSQL: start, UI on 127.0.0.1 only, a real run, stop leaves nothing."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from runner_processes import free_port, listening_addresses, runner_pids, still_alive

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local.components import Runner  # ruff: ignore[module-import-not-at-top-of-file]
from mwaa_local.database import postgres_bin  # ruff: ignore[module-import-not-at-top-of-file]

pytestmark = pytest.mark.e2e


def api(runner: Runner, token: str, method: str, path: str, body: dict | None = None) -> dict:
    return runner.api(method, f"api/v2/{path}", body, token)


@pytest.fixture
def reachable_home() -> Iterator[Path]:
    """A state folder the 'postgres' user can reach when tests run as root (pytest's tmp_path is 0700)."""
    home = Path(tempfile.mkdtemp(prefix="mwaa-local-"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.skipif(postgres_bin() is None, reason="no PostgreSQL binaries on this machine")
def test_start_run_stop_on_postgresql(reachable_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole runner on its own PostgreSQL: UI on 127.0.0.1 only, a real run, nothing left after stop.

    Its settings file sets configuration options and names a startup script, so the run
    shows both reach the tasks (job names, storage root). The default start (SQLite,
    the checked-in settings) is what the browser test drives (tests/test_browser.py).
    """
    data = reachable_home / "data"
    (reachable_home / "startup.sh").write_text(
        f"export RECOMMENDER_STORAGE_ROOT={data}\nexport MWAA__CORE__DROPPED=1\n"
    )
    settings = reachable_home / "settings.yaml"
    settings.write_text(
        "airflow_configuration_options:\n  recommender.job_name_prefix: pg-runner\n"
        "  recommender.synthetic_scale: 0.01\n"
        f"startup_script: {reachable_home / 'startup.sh'}\n"
    )
    # The runner packages and syncs a copy of the checkout, so the live edit below leaves the repository alone.
    source = reachable_home / "source"
    for folder in ("dags", "plugins", "requirements"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    runner = Runner(reachable_home / "runner", free_port(), database="postgres", settings_path=settings, source=source)
    try:
        info = runner.start()
        # start says what it is doing as it goes, in MWAA's order.
        steps = [line.split("] ", 1)[1].split(":")[0] for line in capsys.readouterr().out.splitlines() if "] " in line]
        steps = [step for step in steps if step != ".venv-mwaa"]  # its build lines, when another test changed it
        assert steps == ["startup script startup.sh", "package", "requirements.txt", "requirements/local-engine.txt",
                         "database", "database", "api-server", "scheduler", "dag-processor", "triggerer", "dag-sync",
                         "health", "health"], steps  # fmt: skip
        # Airflow runs on MWAA's package set (.venv-mwaa), the local engine's packages on PYTHONPATH
        # because these settings keep the local backend.
        assert runner.python == REPO / ".venv-mwaa" / "bin" / "python"
        assert runner.env()["PYTHONPATH"] == str(REPO / ".venv-mwaa" / "local-engine")
        scheduler = psutil.Process(runner.running()["scheduler"])
        assert scheduler.cmdline()[0] == str(runner.python)
        assert info["startup_exports"] == ["RECOMMENDER_STORAGE_ROOT"]  # MWAA__ names are dropped
        assert info["url"] == runner.url and info["password"]
        assert info["database"].startswith("PostgreSQL (the runner's own cluster")
        assert runner.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
        assert set(runner.running()) == {"api-server", "scheduler", "dag-processor", "triggerer", "dag-sync"}
        assert len(runner.database.pids()) == 1
        assert listening_addresses(runner_pids(runner.home)) == {"127.0.0.1"}
        token = runner.api("POST", "auth/token", {"username": "admin", "password": info["password"]})["access_token"]
        deadline = time.monotonic() + 120
        while not api(runner, token, "GET", "dags")["dags"] and time.monotonic() < deadline:
            time.sleep(2)  # the dag-processor parses the packaged DAG
        assert [d["dag_id"] for d in api(runner, token, "GET", "dags")["dags"]] == ["video_recommender"]
        assert api(runner, token, "GET", "importErrors")["import_errors"] == []
        api(runner, token, "PATCH", "dags/video_recommender", {"is_paused": False})
        run = api(
            runner,
            token,
            "POST",
            "dags/video_recommender/dagRuns",
            {"logical_date": None, "conf": {}},
        )
        state = run["state"]
        while state not in ("success", "failed") and time.monotonic() < deadline + 180:
            time.sleep(3)
            state = api(runner, token, "GET", f"dags/video_recommender/dagRuns/{run['dag_run_id']}")["state"]
        assert state == "success"
        metrics = json.loads(next(data.glob("runs/*/metrics.json")).read_text())
        assert metrics["training_job"].startswith("pg-runner-train-")
        assert metrics["rows"]["read"] < 100_000  # scale 0.01 from the settings; the default 0.05 reads 219,718
        # Task logs reach the UI/API with the log servers off (same machine: read from the log folder).
        logs = api(
            runner, token, "GET", f"dags/video_recommender/dagRuns/{run['dag_run_id']}/taskInstances/train/logs/1"
        )
        assert metrics["training_job"] in json.dumps(logs["content"])

        # Live edits, no restart: a new module of the package and a DAG file that imports it.
        (source / "plugins" / "video_recommender" / "live_edit.py").write_text('LIVE_TAG = "edited-live"\n')
        dag_file = source / "dags" / "recommender_workflow.py"
        text = dag_file.read_text()
        text = text.replace(
            "from video_recommender import tasks\n",
            "from video_recommender import tasks\nfrom video_recommender.live_edit import LIVE_TAG\n",
        )
        text = text.replace('"factorization-machines"],', '"factorization-machines", LIVE_TAG],')
        assert "LIVE_TAG]" in text
        dag_file.write_text(text)
        edited = time.monotonic()
        tags: list[str] = []
        while "edited-live" not in tags and time.monotonic() < edited + 120:
            time.sleep(2)  # dag-sync mirrors in 2 s; the dag-processor re-parses a changed file every 30 s
            tags = [t["name"] for t in api(runner, token, "GET", "dags/video_recommender")["tags"]]
        assert "edited-live" in tags, (tags, (runner.home / "logs" / "dag-sync.log").read_text())
        assert api(runner, token, "GET", "importErrors")["import_errors"] == []
        synced = (runner.home / "logs" / "dag-sync.log").read_text()
        assert "dags: recommender_workflow.py" in synced and "plugins: video_recommender/live_edit.py" in synced

        # A second run, stopped while a task runs: the task (its own process group) must end too.
        run = api(runner, token, "POST", "dags/video_recommender/dagRuns", {"logical_date": None, "conf": {}})
        path = f"dags/video_recommender/dagRuns/{run['dag_run_id']}/taskInstances"
        while not any(t["state"] == "running" for t in api(runner, token, "GET", path)["task_instances"]):
            assert time.monotonic() < deadline + 300, "no task started running"
            time.sleep(0.5)
        busy = runner_pids(runner.home)
        assert [pid for pid in busy if os.getpgid(pid) != os.getsid(pid)], "no task process in a group of its own"
    finally:
        pids = runner_pids(runner.home)
        stopped = runner.stop()
    assert stopped == ["api-server", "scheduler", "dag-processor", "triggerer", "dag-sync", "postgres"]
    assert runner.running() == {} and runner.database.pids() == []
    assert pids and still_alive(pids) == []
