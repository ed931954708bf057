"""How long the no-Docker local runner takes: start to healthy, a DAG run, stop.

For SQLite and (where this machine has PostgreSQL) the runner's own cluster, first
start (new database) and a second start, a run of video_recommender at scale 0.01
through the REST API, and stop until no process is left. Figures are printed, not
asserted.

    .venv/bin/python benchmarks/local_runner.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "local-runner"))

from mwaa_local.components import Runner  # ruff: ignore[module-import-not-at-top-of-file]
from mwaa_local.database import free_port, postgres_bin  # ruff: ignore[module-import-not-at-top-of-file]


def _run_dag(runner: Runner, password: str) -> float:
    token = runner.api("POST", "auth/token", {"username": "admin", "password": password})["access_token"]
    while not runner.api("GET", "api/v2/dags", token=token)["dags"]:
        time.sleep(0.5)
    runner.api("PATCH", "api/v2/dags/video_recommender", {"is_paused": False}, token)
    start = time.perf_counter()
    run = runner.api("POST", "api/v2/dags/video_recommender/dagRuns",
                     {"logical_date": None, "conf": {"synthetic_scale": 0.01}}, token)  # fmt: skip
    state = run["state"]
    while state not in ("success", "failed"):
        time.sleep(0.5)
        state = runner.api("GET", f"api/v2/dags/video_recommender/dagRuns/{run['dag_run_id']}", token=token)["state"]
    if state != "success":
        raise SystemExit(f"the run failed; see {runner.home / 'logs'}")
    return time.perf_counter() - start


def measure(database: str) -> None:
    home = Path(tempfile.mkdtemp(prefix="mwaa-local-bench-"))
    home.chmod(0o755)  # reachable by the postgres user when run as root
    try:
        for attempt in ("first start", "second start"):
            runner = Runner(home / "runner", free_port(), database=database)
            start = time.perf_counter()
            info = runner.start()
            started = time.perf_counter() - start
            run = _run_dag(runner, info["password"]) if attempt == "first start" else None
            start = time.perf_counter()
            runner.stop()
            stopped = time.perf_counter() - start
            print(f"{database:<9} {attempt:<13} start {started:5.1f} s"
                  + (f"   DAG run (scale 0.01) {run:5.1f} s" if run else " " * 30)
                  + f"   stop {stopped:4.1f} s")  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    print(f"machine: {__import__('os').cpu_count()} cores")
    measure("sqlite")
    if postgres_bin() is not None:
        measure("postgres")
    else:
        print("postgres: no PostgreSQL binaries here")


if __name__ == "__main__":
    main()
