"""The README's local-runner section in a real browser: start, log in, trigger with params, success, the report, stop.

Runs the README's own commands (local-runner/mwaa-local start/stop, default SQLite and
the checked-in settings) and drives the UI in Debian's headless chromium through
Playwright (tests/browser_ui.py). Screenshots of every step: test-artifacts/browser/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from browser_ui import drive
from runner_processes import free_port, listening_addresses, runner_pids, still_alive

REPO = Path(__file__).resolve().parent.parent
MWAA_LOCAL = REPO / "local-runner" / "mwaa-local"
ARTIFACTS = REPO / "test-artifacts" / "browser"

pytestmark = pytest.mark.e2e


def test_start_log_in_trigger_with_params_succeed_stop(chromium: str, tmp_path: Path) -> None:
    home = tmp_path / "runner"
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    started = subprocess.run(
        [str(MWAA_LOCAL), "start", "--port", str(free_port()), "--home", str(home)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    pids = runner_pids(home)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        printed = re.search(
            r"Airflow UI: (http://127\.0\.0\.1:\d+)  \(log in as admin, password (\S+)\)", started.stdout
        )
        assert printed, started.stdout
        assert "database: SQLite" in started.stdout and "connections: aws_default" in started.stdout
        assert listening_addresses(pids) == {"127.0.0.1"}
        url, password = printed.groups()
        seen = drive(url, password, ARTIFACTS, {"synthetic_scale": 0.01, "seed": 7}, run_timeout=600, chromium=chromium)
        assert seen["states_seen_in_ui"][-1] == "success"
        assert seen["api_conf"] == seen["ui_conf"] == {
            "input_uri": None, "run_hyperparameter_opt": False, "synthetic_scale": 0.01, "seed": 7,
            "predictor_type": "regressor",
        }  # fmt: skip
        assert seen["triggered_by"] == "ui"
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert shots[0].startswith("01-login") and shots[-1].startswith("12-report-from-the-list"), shots
    finally:
        pids = sorted(set(pids) | set(runner_pids(home)))
        stopped = subprocess.run([str(MWAA_LOCAL), "stop", "--home", str(home)], capture_output=True, text=True)
    assert (
        stopped.returncode == 0
        and "stopped: api-server, scheduler, dag-processor, triggerer, dag-sync" in stopped.stdout
    )
    assert pids and still_alive(pids) == []
